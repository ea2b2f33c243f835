"""Bedrock batch inference records (AWS docs: "Format and upload your batch inference data"
and "View the results of a batch inference job").

Input line: ``{"recordId": "CALL0000001", "modelInput": {<the model's InvokeModel body>}}``
(``recordId``: 11 alphanumeric characters). Output line (``<input file>.out``): ``{"recordId",
"modelInput", "modelOutput": {<the InvokeModel answer>}}``, or ``"error": {"errorCode": 400,
"errorMessage": ...}`` instead of ``modelOutput`` for a record that failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from textnlp.backends.batch.base import BatchError
from textnlp.backends.providers.common import Parsed

#: ``R`` and ten digits: Bedrock's 11-character record ids.
RECORD_PREFIX = "R"


def record_id(index: int) -> str:
    return f"{RECORD_PREFIX}{index:010d}"


def index_of(record: str) -> int | None:
    digits = record[len(RECORD_PREFIX) :]
    return int(digits) if record.startswith(RECORD_PREFIX) and digits.isdigit() else None


def input_line(index: int, model_input: dict[str, Any]) -> dict[str, Any]:
    return {"recordId": record_id(index), "modelInput": model_input}


def parse_output_line(
    raw: dict[str, Any], parse: Callable[[dict[str, Any]], Parsed]
) -> tuple[int | None, Parsed | BatchError]:
    """A line of an ``.out`` file; ``parse`` reads the model's InvokeModel answer."""
    index = index_of(str(raw.get("recordId") or ""))
    output = raw.get("modelOutput")
    if isinstance(output, dict) and not raw.get("error"):
        return index, parse(output)
    error = raw.get("error") or {}
    return index, BatchError(
        str(error.get("errorCode") or "error"), str(error.get("errorMessage") or "no output")
    )


def parse_file(
    text: str, parse: Callable[[dict[str, Any]], Parsed]
) -> list[tuple[int | None, Parsed | BatchError]]:
    return [parse_output_line(json.loads(line), parse) for line in text.splitlines() if line]
