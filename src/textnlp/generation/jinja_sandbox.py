"""The one Jinja2 environment that templates' prompts and variables and recipes' columns and
filters render in, and the check of a text against it at load time.

Sandboxed (no attribute of Python's internals), strict (an undefined name is an error, not an
empty string) and bounded in memory: no text or list it makes is longer than
``MAX_RENDER_CHARS``, and an operation that would make one (``'x' * 10**12``,
``'%0999999999d' % 1``, ``'x' | center(3000000000)``, ``'x'.ljust(...)``, ``replace``,
``join``, ``batch``, ``format`` with a width, ``+`` or ``~`` doubling a text in a loop...) is
refused before it allocates, as a ``SecurityError`` (a ``jinja2.TemplateError``, which every
caller reports as the template's or recipe's error). Sizes are checked where memory is taken:

- each method of a text (or list) that takes a size or grows one, in ``call``;
- ``*``, ``**``, ``%`` and ``+``, in ``call_binop``, and ``~``, in the concatenation;
- every filter, wrapped: its value and arguments (a list of a million references to one long
  text is small until a filter writes it out) and what the size-taking ones would make;
- each ``{{ }}`` written (``finalize``, counted per render, macros and ``{% set %}`` blocks
  included) and each buffer joined (``concat``);
- what the operators, methods and filters make, kept or not, summed per render up to
  ``MAX_RENDER_MADE`` (each made within the bound, kept one inside the next).

A render that recurses without end is a ``SecurityError`` too. Loops that write nothing are not
bounded in time (``range`` is, per call, by Jinja): a template or recipe is its author's, loaded
from a file, not a request's.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, ItemsView, Iterable, KeysView, Mapping, Sized, ValuesView
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum, pass_context
from markupsafe import EscapeFormatter, Markup

#: Longest sequence an expression may build with ``*`` and bits of an integer ``**`` result.
MAX_EXPRESSION_ITEMS = 1_000_000
MAX_EXPRESSION_BITS = 1_000_000
#: Longest text (or list) one render may make or write (a prompt, a variable, a column): far
#: past any model's context, and past what one request or prompt file's line may hold (1 MiB).
MAX_RENDER_CHARS = 10_000_000
#: What one render's operators, methods and filters may make in all, kept or not, in characters
#: (an item of a list counts as ten, what it takes in memory): a loop that keeps each text or
#: list it makes (``{% set ns.l = [ns.l] * 1000000 %}``) is within each bound alone.
MAX_RENDER_MADE = 10 * MAX_RENDER_CHARS
_ITEM = 10


#: A printf field: mapping key, width and precision (``%0999999999d``, ``%*d``), conversion.
_PRINTF_FIELD = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.)", re.S)
_FIELD_DIGITS = len(str(MAX_EXPRESSION_ITEMS))


def _refuse_past(size: int, what: str) -> None:
    if size > MAX_RENDER_CHARS:
        raise SecurityError(f"{what} longer than {MAX_RENDER_CHARS:,} characters")


def _charge(context: Context, made: Any) -> None:
    """``made`` (a text or list, or a count of characters) added to what the render made."""
    if isinstance(made, list | tuple):
        made = _ITEM * len(made)
    elif isinstance(made, str | bytes):
        made = len(made)
    total = getattr(context, "_bounded_made", 0) + made
    if total > MAX_RENDER_MADE:
        raise SecurityError(f"render making more than {MAX_RENDER_MADE:,} characters and items")
    context._bounded_made = total  # type: ignore[attr-defined]


def _size(value: Any) -> int:
    """About the characters ``str(value)`` writes (each item of a list or dict as often as it is
    listed: ``[text] * 1000000`` is small in memory, not on paper), counted until past
    ``MAX_RENDER_CHARS`` (the walk stops there: a list that holds itself is past it)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool | float | type(None)):
            total += 24
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Namespace):
            total += 13
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total <= MAX_RENDER_CHARS:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
            total += 2 + 2 * len(item)  # a dict's view prints all it holds
            if total <= MAX_RENDER_CHARS:
                stack.extend(item)
        else:
            total += 1
        if total > MAX_RENDER_CHARS:
            break
    return total


def _depth(value: Any) -> int:
    """How deep lists and dicts nest in ``value`` (the indentation ``pprint`` and ``tojson``
    write per line), looked at as far as ``_size`` would."""
    deepest, seen = 0, 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and seen <= MAX_RENDER_CHARS:
        item, depth = stack.pop()
        seen += 1
        deepest = max(deepest, depth)
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _listed(value: Any) -> Any:
    """An iterator as a list (measured, then given on), anything else as it is."""
    return value if isinstance(value, str | bytes | Sized) else list(value)


def _printf_size(text: str, values: Any) -> int:
    """What ``text % values`` may write, each field's width and precision (``*`` ones read
    from ``values`` as Python does) and value counted; a field ``%0999999999d`` is refused."""
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else {}
    total = len(text)
    for key, width, precision, conversion in _PRINTF_FIELD.findall(text):
        if conversion == "%":
            continue
        sizes = []
        for number in (width, precision):
            if number == "*":
                sizes.append(_int(positional.pop(0)) if positional else 0)
            elif len(number) > _FIELD_DIGITS:
                raise SecurityError("format field too wide")
            else:
                sizes.append(int(number or 0))
        if key:
            value = mapping.get(key) if isinstance(mapping, Mapping) else None
        else:
            value = positional.pop(0) if positional else None
        total += abs(sizes[0]) + abs(sizes[1]) + _size(value)
    return total


def _text_method_size(text: Any, name: str, *args: Any, **kwargs: Any) -> int:
    """What ``text.name(*args)`` may make, for the methods that take a size or grow a text."""
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(text), _int(args[0] if args else kwargs.get("width")))
    if name == "expandtabs":
        tabsize = _int(args[0] if args else kwargs.get("tabsize", 8))
        tabs: int = text.count("\t" if isinstance(text, str) else b"\t")
        return len(text) + tabs * tabsize
    if name == "replace" and len(args) >= 2:
        old, new, *rest = args
        count = _int(rest[0]) if rest else -1
        if type(old) is not type(text) or type(new) is not type(text):
            return 0  # Python's TypeError
        times = text.count(old) if old else len(text) + 1
        times = times if count < 0 else min(times, count)
        return len(text) + times * max(0, len(new) - len(old))
    if name == "join":
        items = args[0] if args else []
        given = [len(i) for i in items if isinstance(i, str | bytes)]
        return sum(given) + len(text) * max(0, len(given) - 1)
    if name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        return len(text) * max(1, longest)
    return 0


_TEXT_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join"})
_TEXT_METHODS |= {"translate"}


def _lines(text: Any) -> int:
    return text.count("\n") + 2 if isinstance(text, str) else _size(text) + 2


def _words(text: Any) -> int:
    return len(text.split()) + 1 if isinstance(text, str) else _size(text) + 1


#: What the filters that take a size or grow a text may make, from their own arguments.
_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": lambda value, width=80: max(_size(value), _int(width)),
    "indent": lambda s, width=4, first=False, blank=False: (
        _size(s) + _lines(s) * (len(width) if isinstance(width, str) else _int(width))
    ),
    "replace": lambda s, old, new, count=None: (
        _text_method_size(s, "replace", old, new, -1 if count is None else count)
        if isinstance(s, str)
        else _size(s) * (1 + _size(new)) + _size(new)
    ),
    "batch": lambda value, linecount, fill_with=None: (
        0 if fill_with is None else _int(linecount) * (1 + _size(fill_with))
    ),
    "slice": lambda value, slices, fill_with=None: _int(slices) * (3 + _size(fill_with)),
    "join": lambda value, d="", attribute=None: (
        _size(value) + max(0, len(value) - 1) * _size(d)
        if isinstance(value, Sized)
        else _size(value) * (1 + _size(d))
    ),
    "sum": lambda iterable, attribute=None, start=0: _size(iterable) + _size(start),
    "format": lambda value, *args, **kwargs: _printf_size(str(value), kwargs or args),
    "wordwrap": lambda s, width=79, break_long_words=True, wrapstring=None, **_: (
        _size(s) + _words(s) * _size(wrapstring or "\n")
    ),
    "urlize": lambda value, trim_url_limit=None, nofollow=False, target=None, rel=None, **_: (
        2 * _size(value) + _words(value) * (80 + _size(target) + _size(rel))
    ),
    "tojson": lambda value, indent=None: _size(value) * (1 + _int(indent) * _depth(value)),
    "pprint": lambda value: _size(value) * (1 + _depth(value)),
}
#: Filters whose value is read twice (measured, then used): an iterator is listed first.
_LISTED_FIRST = frozenset({"join", "sum"})


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` refusing a value or argument, or a result it would make, past the bound, and
    what it makes charged to the render (it takes the render's context to do so, and gives
    ``func`` the context, evaluation context or environment it asks for)."""
    passes = _PassArg.from_obj(func)
    predict = _FILTER_SIZES.get(name)

    def bounded(context: Context, *args: Any, **kwargs: Any) -> Any:
        given = list(args)
        if given and name in _LISTED_FIRST:
            given[0] = _listed(given[0])
        for value in (*given, *kwargs.values()):
            _refuse_past(_size(value), f"a value given to filter {name!r}")
        if predict is not None:
            _refuse_past(predict(*given, **kwargs), f"the result of filter {name!r}")
        if passes is _PassArg.context:
            given.insert(0, context)
        elif passes is _PassArg.eval_context:
            given.insert(0, context.eval_ctx)
        elif passes is _PassArg.environment:
            given.insert(0, context.environment)
        result = func(*given, **kwargs)
        if isinstance(result, str | bytes | list | tuple):
            _charge(context, result)
        return result

    return pass_context(functools.wraps(func)(bounded))


class _BoundedFormatter(SandboxedFormatter):
    """``str.format``'s fields, each width and the whole text bounded."""

    written = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        numbers = re.findall(r"\d+", format_spec)
        if any(len(n) > _FIELD_DIGITS for n in numbers):
            raise SecurityError("format field too wide")
        self.written += sum(int(n) for n in numbers) + _size(value)
        _refuse_past(self.written, "the result of format()")
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    """The same, for a ``Markup`` text's ``format`` (its values escaped)."""


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """``a ~ b`` with the parts measured before they are joined (a text doubled in a loop
        of ``{% set ns.s = ns.s ~ ns.s %}``)."""
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.measured_parts(context, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


class _BoundedSandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _BoundedCodeGenerator

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "%":
            if isinstance(left, str | bytes):
                text = left if isinstance(left, str) else left.decode("latin-1")
                made = _printf_size(text, right)
                _refuse_past(made, "the result of '%'")
                _charge(context, made)
            return operator.mod(left, right)
        if operator_ == "+":
            if all(isinstance(side, str | bytes | list | tuple) for side in (left, right)):
                _refuse_past(len(left) + len(right), "the result of '+'")
                made = len(left) + len(right)
                _charge(context, made if isinstance(left, str | bytes) else _ITEM * made)
            return operator.add(left, right)
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | bytes | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_EXPRESSION_ITEMS:
                    raise SecurityError("sequence too long")
                if sized:
                    item = 1 if isinstance(seq, str | bytes) else _ITEM
                    _charge(context, max(0, len(seq) * times * item))
            return operator.mul(left, right)
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and max(abs(left).bit_length(), 1) * right > MAX_EXPRESSION_BITS
        ):
            raise SecurityError("number too large")
        return operator.pow(left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """``obj(*args)``, refused where it would make a text or list past the bound (a
        text's ``center``, ``ljust``, ``replace``, ``join``...; a list's ``extend``; ``lipsum``)."""
        owner = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", "")
        if isinstance(owner, str | bytes) and name in _TEXT_METHODS:
            if name == "join" and args:
                args = (_listed(args[0]), *args[1:])
            made = _text_method_size(owner, name, *args, **kwargs)
            _refuse_past(made, f"the result of {name}()")
            _charge(context, made)
        elif isinstance(owner, list) and name == "extend" and args:
            args = (_listed(args[0]), *args[1:])
            _refuse_past(len(owner) + len(args[0]), "the list extend() makes")
            _charge(context, _ITEM * len(args[0]))
        elif obj is generate_lorem_ipsum:
            given = dict(zip(("n", "html", "min", "max"), args, strict=False)) | kwargs
            n, low, high = (_int(given.get(k, d)) for k, d in (("n", 5), ("min", 20), ("max", 100)))
            _refuse_past(n * max(low, high) * 16, "the text lipsum() makes")
        result = super().call(context, obj, *args, **kwargs)
        # What any call made counts towards the render's whole (``upper()``, ``split()``, a
        # macro's text: each within the bound, kept one after another in a loop).
        if isinstance(result, str | bytes | list | tuple):
            _charge(context, result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` through a formatter that bounds each field and the text."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text: str = value.__self__
        is_map = value.__name__ == "format_map"

        @functools.wraps(value)
        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    return wrapped(*args, **kwargs)  # its TypeError
                kwargs = args[0]
                args = ()
            formatter = (
                _BoundedEscapeFormatter(self, escape=text.escape)
                if isinstance(text, Markup)
                else _BoundedFormatter(self)
            )
            return type(text)(formatter.vformat(text, args, kwargs))

        return bounded

    @staticmethod
    def measured_parts(context: Context, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        made = sum(_size(part) for part in parts)
        _refuse_past(made, "the result of '~'")
        _charge(context, made)
        return parts


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    """Each ``{{ }}`` measured before it is written, and the render's writing so far (a macro's
    or a ``{% set %}`` block's buffer fills before it is joined)."""
    written = getattr(context, "_bounded_written", 0) + _size(value)
    _refuse_past(written, "render")
    context._bounded_written = written  # type: ignore[attr-defined]
    return value


def _concat(pieces: Iterable[str]) -> str:
    """A buffer joined (a macro's output, a ``{% set %}`` block) if within the bound."""
    pieces = list(pieces)
    _refuse_past(sum(len(p) for p in pieces), "render")
    return "".join(pieces)


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


JINJA = _BoundedSandbox(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=False, finalize=_finalize
)
JINJA.template_class = _BoundedTemplate
JINJA.concat = _concat  # type: ignore[method-assign]
JINJA.filters = {name: _bounded_filter(name, func) for name, func in JINJA.filters.items()}


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
