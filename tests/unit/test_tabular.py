"""One reader of users' tabular files: validation, seed files and prompt files agree on what
they refuse, and rows are read as they are consumed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from textnlp.errors import DatasetError, RecipeError
from textnlp.generation.recipes.seeds import load_seed_rows
from textnlp.services.job_prompts import parse_prompt_file
from textnlp.tabular import TableError, csv_rows, json_lines
from textnlp.validation.loader import load_rows

SHORT = "prompt,text,label\nhi,good review,pos\nbye,short row\n"
NAN = '{"prompt": "hi", "text": "a", "score": 1}\n{"prompt": "b", "text": "b", "score": NaN}\n'


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("d.csv", SHORT, "row 2 (line 3): 2 fields, the header has 3"),
        ("d.jsonl", NAN, "line 2 is not valid JSON (NaN is not a JSON number)"),
    ],
)
def test_every_caller_refuses_what_one_refuses(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as validated:
        load_rows(path)
    with pytest.raises(RecipeError) as seeded:
        load_seed_rows(path, name=name)
    assert validated.value.message == f"{path}, {problem}"
    assert seeded.value.message == f"seed file {name}: {problem}"
    if name.endswith(".csv"):  # a prompt file's JSONL names the field instead (its own check)
        with pytest.raises(DatasetError) as prompted:
            parse_prompt_file(name, content.encode())
        assert prompted.value.message == f"prompt file {name}, {problem}"


def test_rows_are_read_as_they_are_consumed() -> None:
    def lines() -> Iterator[str]:
        yield "text\n"
        yield "first\n"
        raise AssertionError("read past the row asked for")

    assert next(csv_rows(lines())).fields == {"text": "first"}
    assert next(json_lines(iter(['{"a": 1}\n', "{never read"]))) == (1, {"a": 1})


def test_a_header_naming_a_field_twice_is_refused() -> None:
    with pytest.raises(TableError, match="the header repeats a"):
        next(csv_rows(["a,b,a\n", "1,2,3\n"]))


def test_line_numbers_count_blank_lines() -> None:
    """csv.DictReader skips blank lines without a word: a bad row after three was said to be
    on line 3, not 6, in validate's, a seed file's and a prompt file's messages."""
    lines = ["text,label\n", "hello world,a\n", "\n", "\n", "\n", "ok,b\n", "bye,b,extra\n"]
    rows = csv_rows(lines)
    assert [(r.number, r.line) for r in (next(rows), next(rows))] == [(1, 2), (2, 6)]
    with pytest.raises(TableError, match=r"row 3 \(line 7\): 3 fields, the header has 2"):
        next(rows)
