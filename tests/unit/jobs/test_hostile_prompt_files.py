"""Prompt files and job specs from users: malformed, deep or invalid text is a DatasetError
or a validation error (HTTP 422), never an ``OSError``/``csv.Error``/``RecursionError``."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from textnlp.errors import DatasetError
from textnlp.services.job_models import JobSpec, PromptItem
from textnlp.services.job_prompts import parse_prompt_file


def test_a_csv_field_over_the_csv_modules_default_limit_reads() -> None:
    """As a dataset's or a seed file's (one reader, ``tabular``): csv's 128 KiB default is no
    bound of textnlp's; a prompt too long for its model fails as that record."""
    data = b'prompt,label\n"' + b"x" * 140_000 + b'",a\n'
    (item,) = list(parse_prompt_file("p.csv", data))
    assert len(str(item.prompt)) == 140_000


def test_a_nul_byte_in_a_csv_is_a_dataset_error_or_a_prompt() -> None:
    try:
        items = parse_prompt_file("p.csv", b"prompt\nhi\x00there\n")
    except DatasetError:
        return
    assert items[0].prompt == "hi\x00there"


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deep_json_lines_are_dataset_errors(depth: int) -> None:
    line = '{"prompt": "hi", "x": ' + "[" * depth + "]" * depth + "}\n"
    with pytest.raises(DatasetError, match="line 1"):
        parse_prompt_file("p.jsonl", line.encode())


@pytest.mark.parametrize(
    "line",
    [
        {"prompt": "hi \ud800"},
        {"prompt": "hi", "system": "\udfff"},
        {"prompt": "hi", "label": "\ud800"},
        {"prompt": "hi", "\ud800": "x"},
    ],
)
def test_lone_surrogates_in_a_prompt_file_are_dataset_errors(line: dict[str, str]) -> None:
    with pytest.raises(DatasetError, match="Unicode"):
        parse_prompt_file("p.jsonl", json.dumps(line).encode() + b"\n")


@pytest.mark.parametrize(
    "spec",
    [
        {"prompts": ["ok", "bad \ud800"]},
        {"prompts": [{"prompt": "ok", "variables": {"k": "\ud800"}}]},
        {"template": "qa-pairs", "count": 1, "variables": {"\ud800": 1}},
        {"prompts": ["ok"], "params": {"stop": ["\ud800"]}},
        {"prompts": ["ok"], "model": "\ud800"},
    ],
)
def test_job_specs_refuse_invalid_unicode(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="Unicode"):
        JobSpec.model_validate(spec)


@pytest.mark.parametrize(
    "template", ["/etc/secrets.yaml", "../x.yaml", "templates/qa-pairs.yaml", "QA Pairs"]
)
def test_job_templates_are_catalogue_ids(template: str) -> None:
    with pytest.raises(ValidationError, match="template"):
        JobSpec.model_validate({"template": template, "count": 1})
    assert JobSpec.model_validate({"template": "qa-pairs", "count": 1}).template == "qa-pairs"


def test_prompt_items_refuse_invalid_unicode() -> None:
    with pytest.raises(ValidationError) as caught:
        PromptItem.model_validate({"prompt": "\ud800"})
    assert caught.value.errors()[0]["loc"] == ("prompt",)


def test_a_prompt_lines_variables_may_be_nested_as_the_api_takes_them() -> None:
    """``{"prompt", "variables": {...}}`` (the API's prompt list shape) or the fields flat."""
    data = b'{"prompt": "a", "variables": {"label": "x"}}\n{"prompt": "b", "label": "y"}\n'
    first, second = parse_prompt_file("p.jsonl", data)
    assert first.variables == {"label": "x"} and second.variables == {"label": "y"}


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("p.csv", b"prompt,label\nhi,a,EXTRA\n", r"row 1 \(line 2\): 3 fields, the header has 2"),
        ("p.csv", b"prompt,label\nhi\n", r"row 1 \(line 2\): 1 field, the header has 2"),
        ("p.csv", b'prompt,x\n"unterminated,1\n', "a quoted field is never closed"),
        ("p.jsonl", b'{"prompt": "a", "x": 1e999}\n', "field 'x' holds a number that is not"),
        ("p.jsonl", b'{"prompt": "a", "x": [1]}\n', "field 'x' holds list; a prompt's other"),
        ("p.jsonl", b'{"nope": 1}\n', "line 1: no 'prompt' field"),  # "at least 1 character"
    ],
)
def test_a_prompts_other_fields_are_named_when_they_cannot_be_variables(
    name: str, data: bytes, message: str
) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_prompt_file(name, data)
