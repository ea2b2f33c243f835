"""The library's arguments are checked as typer checks the CLI's options: a wrong type or bound
is an ``InvalidParameter`` naming the argument, before any model or file (an audit found bare
``TypeError``s, a NaN seed taken, and ``count=10**30`` running without end)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import textnlp
from textnlp.config import load_settings
from textnlp.errors import InvalidInput, InvalidParameter


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"count": 2.5}, "count: Input should be a valid integer"),
        ({"count": "3"}, "count: Input should be a valid integer"),
        ({"count": True}, "count: Input should be a valid integer"),
        ({"count": 0}, "count: Input should be greater than or equal to 1"),
        ({"seed": math.nan}, "seed: Input should be a valid integer"),
        ({"concurrency": "2"}, "concurrency: Input should be a valid integer"),
        ({"max_candidates": "5"}, "max_candidates: Input should be a valid integer"),
        ({"template": None}, "template: expected a template's or recipe's id or YAML file"),
        ({"template": {"id": "x"}}, "or a textnlp.Recipe, not dict"),
        ({"output": None}, "output: expected a file name (str or pathlib.Path), not NoneType"),
        ({"output": "a\x00b.jsonl"}, "output: not a file name"),
        ({"output": "\ud800.jsonl"}, "output: not a file name this system can store"),
        ({"variables": ["a"]}, "variables: Input should be a valid dictionary"),
        # A raw UnicodeEncodeError from the cache key, PydanticSerializationError from the record.
        ({"variables": {"aspect": "a\ud800b"}}, "variables: 'aspect' holds text that is not valid"),
        ({"variables": {"aspect": b"x"}}, "variables: 'aspect' holds a bytes: a variable is text"),
        ({"variables": {"a": [{"b": object()}]}}, "variables: 'a' holds a object: a variable"),
        ({"variables": {"\udcff": "x"}}, "variables: '\\udcff' holds text that is not valid"),
        ({"variables": {"a": math.inf}}, "variables: 'a' holds a number that is not finite"),
        ({"settings": "x"}, "settings: expected a textnlp.config.Settings"),
        # A dict was taken, then passed on as it was (AttributeError); {} meant the defaults.
        ({"settings": {"default_model": "x"}}, "settings: expected a textnlp.config.Settings"),
        ({"settings": {}}, "(from load_settings) or None, not dict"),
        ({"on_record": 5}, "on_record: expected a function taking each Record, or None, not int"),
        ({"max_cost_usd": math.nan}, "max_cost_usd: Input should be a finite number"),
        ({"rejects": 5}, "rejects: expected a file name"),
    ],
)
def test_a_wrong_argument_is_named(tmp_path: Path, given: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "template": "qa-pairs",
        "count": 1,
        "output": tmp_path / "x.jsonl",
    } | given
    with pytest.raises(InvalidParameter) as refused:
        textnlp.generate_dataset(
            arguments.pop("template"), arguments.pop("count"), arguments.pop("output"), **arguments
        )
    assert message in refused.value.message
    assert list(tmp_path.glob("x.jsonl*")) == []  # nothing written, not even a partial file


def test_the_count_bound_holds_for_the_library_too(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="above the maximum of 1000000"):
        textnlp.generate_dataset("qa-pairs", 10**30, tmp_path / "x.jsonl")
    assert list(tmp_path.glob("x.jsonl*")) == []


async def test_the_blocking_form_in_a_running_loop_says_what_to_await(tmp_path: Path) -> None:
    """As in a Jupyter cell: it was asyncio.run's RuntimeError, and a never-awaited warning."""
    with pytest.raises(InvalidInput, match=r"use `await textnlp.agenerate_dataset\(...\)`"):
        textnlp.generate_dataset("qa-pairs", 1, tmp_path / "x.jsonl")
    assert list(tmp_path.glob("x.jsonl*")) == []
    assert textnlp.generate_dataset.__name__ == "generate_dataset"


def test_a_home_relative_output_is_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It made a directory named "~" in the working directory.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    settings = load_settings(home=tmp_path / "textnlp")
    columns: dict[str, Any] = {"a": {"type": "category", "values": ["x", "y"]}}
    recipe = textnlp.Recipe(id="m", columns=columns, output="a")
    textnlp.generate_dataset(recipe, 1, "~/x.jsonl", settings=settings)  # no model: fast
    assert (tmp_path / "home" / "x.jsonl").is_file() and not (tmp_path / "~").exists()
