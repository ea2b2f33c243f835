"""``--var`` values as a user types them: JSON when they parse as JSON, else the text as typed
(``topic=no`` is "no", not YAML 1.1's false); an empty value is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli_errors import assert_one_line_exit_2, textnlp

#: Typed values and the kind a recipe's expression sees.
TYPED = {
    "no": "text",
    "yes": "text",
    "0x10": "text",
    "1_000": "text",
    ".inf": "text",
    "NaN": "text",
    '"5"': "text",
    "5": "number",
    "-2.5": "number",
    "true": "bool",
    "[1, 2]": "other",
}

#: Columns c0, c1... each fixed by a --var; ``kinds`` names the kind of each (no model call).
COLUMNS = [f"c{i}" for i in range(len(TYPED))]
KIND = (
    "'bool' if v is sameas true or v is sameas false else 'text' if v is string"
    " else 'number' if v is number else 'other'"
)
RECIPE = {
    "id": "var-kinds",
    "columns": {
        **{name: {"type": "category", "values": ["x"]} for name in COLUMNS},
        "kinds": {
            "type": "expression",
            "expr": f"{{% for v in [{', '.join(COLUMNS)}] %}}{{{{ {KIND} }}}};{{% endfor %}}",
        },
    },
    "output": "kinds",
}


def test_a_var_is_json_or_else_the_text_typed(tmp_path: Path) -> None:
    recipe = tmp_path / "kinds.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    pairs = [arg for i, raw in enumerate(TYPED) for arg in ("--var", f"c{i}={raw}")]
    shown = textnlp("preview", str(recipe), "-n", "1", *pairs, env={"COLUMNS": "400"})
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "kinds" in line)
    kinds = row.split("│")[2].strip().rstrip(";").split(";")
    assert dict(zip(TYPED, kinds, strict=True)) == TYPED
    assert "│ no " in shown.stdout and "│ 0x10 " in shown.stdout  # shown as typed, too


@pytest.mark.parametrize(
    "command",
    [
        ["preview", "qa-pairs", "-n", "1", "--var", "topic="],
        ["generate", "-t", "qa-pairs", "-n", "1", "-o", "out.jsonl", "--var", "topic="],
        ["jobs", "submit", "-t", "qa-pairs", "-n", "1", "--var", "topic="],
    ],
    ids=["preview", "generate", "jobs-submit"],
)
def test_an_empty_var_is_refused(tmp_path: Path, command: list[str]) -> None:
    assert_one_line_exit_2(textnlp(*command), "--var topic: empty value")
    assert not (tmp_path / "out.jsonl").exists()


def test_an_empty_param_is_refused() -> None:
    result = textnlp("jobs", "submit", "-t", "qa-pairs", "-n", "1", "--param", "max_tokens=")
    assert_one_line_exit_2(result, "--param max_tokens: empty value")
