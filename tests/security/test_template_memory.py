"""The Jinja sandbox bounds what a template or recipe makes, not only ``*``, ``**`` and ``%``.

Filters and text methods that take a size or grow a text (``center(3000000000)``, ``indent``,
``replace``, ``batch``, ``join``, ``'%*d'``, ``ljust``, ``format`` with a width, ``~`` or ``+``
doubling a text in a loop...) ended in a ``MemoryError`` traceback, or took the machine's
memory, instead of the template's error. Each is rendered in a subprocess under an address-space
limit, so that a regression fails the test instead of the machine.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from tests.support.real_cli import TEXTNLP, cli_env
from textnlp.generation.recipes import columns
from textnlp.generation.recipes.sample import recipe_sample
from textnlp.generation.templates import TemplateLibrary

#: More than a render within the bound takes, far less than any bypass asks.
ADDRESS_SPACE = 1536 * 2**20
BYPASSES = {
    "center": "{{ 'x'|center(3000000000) }}",
    "indent": "{{ 'x'|indent(width=3000000000, first=True) }}",
    "replace": "{{ ('x' * 1000000)|replace('x', 'y' * 100000) }}",
    "replace method": "{{ ('x' * 1000000).replace('x', 'y' * 100000) }}",
    "batch": "{{ range(3)|batch(3000000000, 'x')|list|length }}",
    "slice": "{{ range(3)|slice(300000000)|list|length }}",
    "join": "{{ (['y' * 1000000] * 100000)|join }}",
    "join method": "{{ ''.join(['y' * 1000000] * 100000) }}",
    "printf star": "{{ '%*d' % (3000000000, 1) }}",
    "format filter": "{{ '%*d'|format(3000000000, 1) }}",
    "format filter width": "{{ '%3000000000d'|format(1) }}",
    "ljust": "{{ 'x'.ljust(3000000000) }}",
    "rjust": "{{ 'x'.rjust(3000000000) }}",
    "zfill": "{{ 'x'.zfill(3000000000) }}",
    "center method": "{{ 'x'.center(3000000000) }}",
    "expandtabs": "{{ ('\t' * 1000000).expandtabs(1000000) }}",
    "str.format width": "{{ '{:3000000000}'.format(1) }}",
    "str.format nested width": "{{ '{:{}}'.format(1, 3000000000) }}",
    "~ doubling": "{% set ns = namespace(s='x') %}"
    "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "+ doubling": "{% set ns = namespace(s='x') %}"
    "{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "+ doubling a list": "{% set ns = namespace(s=[1]) %}"
    "{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "extend doubling": "{% set l = [1] %}"
    "{% for i in range(40) %}{{ l.extend(l) or '' }}{% endfor %}{{ l|length }}",
    # Small in memory (a million references to one text), a terabyte once written out.
    "shared items written": "{% set ns = namespace(l=['x' * 1000000]) %}"
    "{% for i in range(20) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "shared items filtered": "{% set ns = namespace(l=['x' * 1000000]) %}"
    "{% for i in range(20) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l|string|length }}",
    # Each within the bounds, kept one inside the next: what the render makes in all.
    "kept lists": "{% set ns = namespace(l=[]) %}"
    "{% for i in range(100000) %}{% set ns.l = [ns.l] * 1000000 %}{% endfor %}",
    "kept texts": "{% set ns = namespace(l=[]) %}"
    "{% for i in range(100000) %}{% set ns.l = [ns.l, 'x' * 999999] %}{% endfor %}",
    "kept filtered lists": "{% set ns = namespace(l=[]) %}"
    "{% for i in range(100000) %}{% set ns.l = [ns.l, range(100000)|list] %}{% endfor %}",
    "kept + lists": "{% set ns = namespace(l=[]) %}"
    "{% for i in range(100000) %}{% set ns.l = ns.l + [ns.l] %}{% endfor %}",
    "macro buffer": "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 999999 }}"
    "{% endfor %}{% endmacro %}{{ m()|length }}",
    "set block": "{% set b %}{% for i in range(100000) %}{{ 'x' * 999999 }}{% endfor %}"
    "{% endset %}{{ b|length }}",
    "lipsum": "{{ lipsum(n=100000, max=100000)|length }}",
    "tojson indent": "{{ [[[[1]]]]|tojson(indent=3000000000) }}",
    "wordwrap": "{{ ('a ' * 500000)|wordwrap(1, wrapstring='y' * 100000) }}",
    "urlize": "{{ ('a.com ' * 100000)|urlize(target='y' * 100000) }}",
    "translate": "{{ ('a' * 1000000).translate({97: 'y' * 100000}) }}",
    # A method's or a macro's result kept in a loop: each copy within the bound.
    "kept upper()": "{% set ns = namespace(l=[]) %}{% set big = 'x' * 1000000 %}"
    "{% for i in range(3000) %}{% if ns.l.append(big.upper()) %}{% endif %}{% endfor %}",
    "kept split()": "{% set ns = namespace(l=[]) %}{% set big = 'a ' * 500000 %}"
    "{% for i in range(3000) %}{% if ns.l.append(big.split()) %}{% endif %}{% endfor %}",
    "kept macro text": "{% macro m() %}{% for i in range(10) %}{{ 'x' * 990000 }}{% endfor %}"
    "{% endmacro %}"
    "{% set ns = namespace(l=[]) %}"
    "{% for i in range(3000) %}{% if ns.l.append(m()) %}{% endif %}{% endfor %}",
    # A dict's view prints all it holds.
    "dict values written": "{% set l = ['x' * 1000000] * 1000000 %}{{ dict(a=l).values() }}",
    "dict items joined": "{% set l = ['x' * 1000000] * 1000000 %}{{ dict(a=l).items() ~ '' }}",
}
#: Large but ordinary: a retrieval prompt's 500 documents joined (511 KB).
ORDINARY = {
    "joined documents": "{% set docs = ['d' * 1000] * 500 %}"
    "{{ docs|join('\\n\\n---- next one ----\\n\\n') }}",
}

#: Renders each of ``sys.argv[1]`` (a JSON map) as a template's prompt; prints what each did.
CHILD = f"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))
from textnlp.errors import TemplateError
from textnlp.generation.templates import parse_template
outcomes = {{}}
for name, text in json.loads(sys.argv[1]).items():
    try:
        template = parse_template({{"id": "demo", "user": text}}, source="t.yaml")
        outcomes[name] = "rendered " + str(len(template.render({{}})[1]))
    except TemplateError as exc:
        outcomes[name] = exc.message
    except MemoryError:
        outcomes[name] = "MemoryError"
print(json.dumps(outcomes))
"""


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _outcomes(texts: dict[str, str]) -> dict[str, str]:
    """What rendering each of ``texts`` did, in a child under the address-space limit."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcomes: dict[str, str] = json.loads(done.stdout)
    return outcomes


def test_every_way_past_the_memory_bound_is_the_templates_error() -> None:
    outcomes = _outcomes(BYPASSES)
    wrong = {
        name: said
        for name, said in outcomes.items()
        if not (
            said.startswith("template 'demo': ")
            and any(
                why in said
                for why in (
                    "longer than 10,000,000 characters",
                    "format field too wide",
                    "render making more than 100,000,000 characters",
                )
            )
        )
    }
    assert set(outcomes) == set(BYPASSES) and not wrong, wrong


def test_ordinary_large_prompts_render() -> None:
    assert _outcomes(ORDINARY) == {"joined documents": "rendered 510978"}


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "wide.yaml").write_text("id: wide\nuser: \"{{ 'x'|center(3000000000) }}\"\n")
    done = subprocess.run(
        [*TEXTNLP, "templates", "show", "./wide.yaml"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "error: template 'wide': the result of filter 'center' longer than 10,000,000 characters\n"
    )


class _BothWays:
    """A text rendered by the bounded sandbox and by Jinja's own, each render compared."""

    plain = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)

    def __init__(self, bounded: Any, text: str, seen: list[str]) -> None:
        self.bounded, self.text, self.seen = bounded(text), text, seen

    def render(self, *args: Any, **kwargs: Any) -> str:
        rendered: str = self.bounded.render(*args, **kwargs)
        assert rendered == self.plain.from_string(self.text).render(*args, **kwargs)
        self.seen.append(self.text)
        return rendered


def test_builtin_templates_and_recipes_render_as_without_the_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textnlp.generation import templates

    seen: list[str] = []
    for module in (templates, columns):
        bounded = module.jinja_template
        monkeypatch.setattr(
            module, "jinja_template", lambda text, b=bounded: _BothWays(b, text, seen)
        )
    library = TemplateLibrary.load()
    for template in library.all():
        for index in range(50):
            template.render(template.sample_variables(seed=3, index=index))
    for recipe in library.recipes():
        recipe_sample(recipe)  # its sampler and expression columns, its first cheap prompt
    assert len(set(seen)) >= len(library.all()) + len(library.recipes())
