"""Prompt lists and prompt files (JSONL/CSV) as a template the dataset pipeline can run.

Record ``i`` of a prompt-list job is the model's answer to prompt ``i``; its variables are the
prompt's extra fields, so labels in a prompt file travel into the dataset. A JSONL file of
OpenAI batch requests (lines with ``custom_id``, ``url`` and ``body``) is a prompt file too:
``services.batch_requests`` reads it, and record ``i`` answers request line ``i``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from pydantic import ValidationError

from textnlp.errors import DatasetError, first_error
from textnlp.generation.templates import PromptTemplate
from textnlp.services.batch_requests import (
    BatchRequestItem,
    batch_requests_template,
    is_batch_request,
    iter_batch_requests,
    line_failure,
    parse_line_json,
    text_lines,
)
from textnlp.services.job_models import PromptItem
from textnlp.tabular import TableError, csv_table

PROMPT_LIST_ID = "prompt-list"


class PromptListTemplate(PromptTemplate):
    """A template whose record ``i`` is prompt ``i`` (not a random sample)."""

    prompts: list[PromptItem] = []

    def sample_variables(
        self, seed: int, index: int, overrides: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        item = self.prompts[index]
        return {**item.variables, "prompt": item.prompt, "system": item.system or ""}

    def request_failure(self, exc: Exception) -> dict[str, Any] | None:
        """A prompt the model refuses (one longer than its context...) fails its record alone,
        as a batch file's line does: one long prompt must not lose the job's other records."""
        return line_failure(exc)


def prompt_list_template(items: list[PromptItem]) -> PromptTemplate:
    """The template of a job's prompts (of a batch file's requests, when they are)."""
    requests = [item for item in items if isinstance(item, BatchRequestItem)]
    if requests and len(requests) == len(items):
        return batch_requests_template(requests)
    return PromptListTemplate(
        id=PROMPT_LIST_ID,
        version="1",
        description="prompts given with the job",
        system="{{ system }}",
        user="{{ prompt }}",
        prompts=items,
    )


def normalise(prompts: list[str | PromptItem]) -> list[PromptItem]:
    return [p if isinstance(p, PromptItem) else PromptItem(prompt=p) for p in prompts]


def parse_prompt_file(name: str, data: bytes) -> list[PromptItem]:
    """Prompts of a JSONL file (strings or objects with ``prompt``, or OpenAI batch requests)
    or a CSV with a ``prompt`` column; other fields become variables. Empty or malformed files
    raise ``DatasetError``."""
    return list(iter_prompt_file(name, [data]))


def iter_prompt_file(name: str, chunks: Iterable[bytes]) -> Iterator[PromptItem]:
    """``parse_prompt_file`` of a file given in chunks, one prompt at a time: memory holds a
    line, not the file (a 200 MB upload is checked, counted and submitted as a stream)."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".json")):
        items = _jsonl(name, chunks)
    elif lower.endswith(".csv"):
        items = _csv(name, chunks)
    else:
        raise DatasetError(f"prompt file {name} must be .jsonl or .csv")
    empty = True
    for item in items:
        empty = False
        yield item
    if empty:
        raise DatasetError(f"prompt file {name} has no prompts")


def _item(name: str, where: str, raw: Any) -> PromptItem:
    if isinstance(raw, str):
        raw = {"prompt": raw}
    if not isinstance(raw, dict):
        raise DatasetError(f"prompt file {name}, {where}: expected a string or an object")
    if "prompt" not in raw:  # else "prompt: String should have at least 1 character"
        raise DatasetError(f"prompt file {name}, {where}: no 'prompt' field")
    given = raw.get("variables")
    # {"prompt", "variables": {...}} as the API's prompt list takes it, or the fields flat.
    nested = given if isinstance(given, dict) else {}
    flat = {k: v for k, v in raw.items() if k not in {"prompt", "system"} and v is not None}
    if isinstance(given, dict):
        del flat["variables"]
    fields = {**nested, **flat}
    for key, value in fields.items():
        problem = _variable_problem(key, value)
        if problem is not None:
            raise DatasetError(f"prompt file {name}, {where}: {problem}")
    try:
        return PromptItem(
            prompt=raw.get("prompt", ""), system=raw.get("system") or None, variables=fields
        )
    except ValidationError as exc:
        raise DatasetError(f"prompt file {name}, {where}: {first_error(exc)}") from None


def _variable_problem(key: Any, value: Any) -> str | None:
    """Why a prompt's other field cannot be one of its record's variables, or None."""
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return None
    kind = "a number that is not finite" if isinstance(value, float) else type(value).__name__
    return f"field {key!r} holds {kind}; a prompt's other fields are text, numbers or booleans"


def _jsonl(name: str, chunks: Iterable[bytes]) -> Iterator[PromptItem]:
    rows = (
        (number, line, parse_line_json(name, number, line))
        for number, line in enumerate(text_lines(name, chunks, kind="prompt"), 1)
        if line.strip()
    )
    first = next(rows, None)
    if first is None:
        return
    if is_batch_request(first[2]):
        yield from iter_batch_requests(name, chain([first], rows))
        return
    for number, _, raw in chain([first], rows):
        yield _item(name, f"line {number}", raw)


def _csv(name: str, chunks: Iterable[bytes]) -> Iterator[PromptItem]:
    lines = text_lines(name, chunks, kind="prompt", keep_ends=True)
    try:
        header, rows = csv_table(lines)
        if "prompt" not in header:
            raise DatasetError(f"prompt file {name} needs a 'prompt' column")
        for row in rows:
            yield _item(name, f"line {row.line}", row.fields)
    except TableError as exc:  # a row with more or fewer fields, a quote left open...
        raise DatasetError(f"prompt file {name}, {exc}") from None
