"""The one Jinja2 environment that templates' prompts and variables and recipes' columns and
filters render in, and the check of a text against it at load time.

Sandboxed (no attribute of Python's internals), strict (an undefined name is an error, not an
empty string) and with ``*``, ``**`` and ``%`` bounded: ``'x' * 10**12`` or
``'%0999999999d' % 1`` would exhaust memory; a render that recurses without end, or whose text
grows past ``MAX_RENDER_CHARS``, is a ``SecurityError`` as those are. Loops that write nothing
are not bounded in time (``range`` is, per call, by Jinja): a template or recipe is its
author's, loaded from a file, not a request's.
"""

from __future__ import annotations

import functools
import operator
import re
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

#: Longest sequence an expression may build with ``*`` and bits of an integer ``**`` result.
MAX_EXPRESSION_ITEMS = 1_000_000
MAX_EXPRESSION_BITS = 1_000_000
#: Longest text one render may make (a prompt, a variable, a column): far past any model's
#: context, and past what one request or prompt file's line may hold (1 MiB).
MAX_RENDER_CHARS = 10_000_000


#: A printf field's width and precision (``%0999999999d``).
_PRINTF_FIELD = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d*))?")


class _BoundedSandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "%":
            if isinstance(left, str):
                for width, precision in _PRINTF_FIELD.findall(left):
                    if max(len(width), len(precision)) > len(str(MAX_EXPRESSION_ITEMS)):
                        raise SecurityError("format field too wide")
            return operator.mod(left, right)
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_EXPRESSION_ITEMS:
                    raise SecurityError("sequence too long")
            return operator.mul(left, right)
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and max(abs(left).bit_length(), 1) * right > MAX_EXPRESSION_BITS
        ):
            raise SecurityError("number too large")
        return operator.pow(left, right)


class _BoundedTemplate(jinja2.Template):
    def render(self, *args: Any, **kwargs: Any) -> str:
        """The text, built piece by piece and stopped past ``MAX_RENDER_CHARS`` (a loop of
        ``'x' * 99999`` built a prompt of a gigabyte, then reported valid)."""
        pieces: list[str] = []
        size = 0
        try:
            for piece in self.generate(*args, **kwargs):
                size += len(piece)
                if size > MAX_RENDER_CHARS:
                    raise SecurityError(f"render longer than {MAX_RENDER_CHARS:,} characters")
                pieces.append(piece)
        except RecursionError:  # a macro calling itself: a 1,000-line traceback otherwise
            raise SecurityError("recursion too deep (a macro that calls itself?)") from None
        return "".join(pieces)


JINJA = _BoundedSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
JINJA.template_class = _BoundedTemplate


@functools.lru_cache(maxsize=1024)
def jinja_template(text: str) -> jinja2.Template:
    """``text`` compiled once: a run renders the same few texts for every record (compiling
    them each time was most of a sampler recipe's run, and of every ``--resume`` check)."""
    return JINJA.from_string(text)


def check_templates(*texts: str | None) -> None:
    """Check Jinja2 ``texts`` as a render would: a syntax error, or an unknown filter or test
    (``{{ n | nosuchfilter }}``), raises ``ValueError`` naming it and its line."""
    for text in texts:
        if not text:
            continue
        try:
            tree = JINJA.parse(text)
            # Parsing accepts any filter or test name, and compiling defers those under an
            # ``if`` to the render; the environment's filters and tests are fixed, so a name
            # it lacks anywhere is a mistake.
            for node in tree.find_all((nodes.Filter, nodes.Test)):
                kind, known = (
                    ("filter", JINJA.filters)
                    if isinstance(node, nodes.Filter)
                    else ("test", JINJA.tests)
                )
                if node.name not in known:
                    raise ValueError(f"line {node.lineno}: no {kind} named {node.name!r}")
            JINJA.compile(text)  # what else compiling finds (a block defined twice...)
        except jinja2.TemplateSyntaxError as exc:  # TemplateAssertionError included
            raise ValueError(f"line {exc.lineno}: {exc.message}") from None
        except RecursionError:  # an expression nested thousands deep
            raise ValueError("nested too deeply to compile") from None
