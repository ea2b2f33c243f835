"""SageMaker batch transform records (AWS docs "Associate Prediction Results with Input
Records"; API reference ``CreateTransformJob``, ``DataProcessing``).

Input line (``SplitType: Line``): ``{"id": "record-7", "body": {<the container's request
body>}}``. ``InputFilter: "$.body"`` sends the body alone to the container (the body the
online backend sends, ``SageMakerBackend.request_body``), ``JoinSource: "Input"`` adds the
container's answer to the input record under ``SageMakerOutput``, and ``OutputFilter`` keeps
the id and the answer: each line of ``<input file>.out`` is ``{"id": "record-7",
"SageMakerOutput": <the container's answer>}``. The id maps a line back to its record, whatever
order the lines come in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from textnlp.backends.batch.base import BatchError, custom_id, index_of
from textnlp.backends.providers.common import Parsed

INPUT_FILTER = "$.body"
OUTPUT_FILTER = "$['id','SageMakerOutput']"
OUTPUT_KEY = "SageMakerOutput"


def input_line(index: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": custom_id(index), "body": body}


def parse_output_line(
    raw: Any, parse: Callable[[Any], Parsed]
) -> tuple[int | None, Parsed | BatchError]:
    """A line of an ``.out`` file; ``parse`` reads the container's answer."""
    if not isinstance(raw, dict):
        return None, BatchError("unexpected_output", "the line is not a JSON object")
    index = index_of(str(raw.get("id") or ""))
    if OUTPUT_KEY not in raw:
        return index, BatchError("no_output", f"the line has no {OUTPUT_KEY}")
    output = raw[OUTPUT_KEY]
    if isinstance(output, dict) and "error" in output:
        # The container's error object (TGI: {"error", "error_type"}; OpenAI-style: {"error":
        # {"message", "type"}}), not an answer.
        error = output["error"]
        message = error.get("message") if isinstance(error, dict) else error
        return index, BatchError("model_error", str(message))
    try:
        return index, parse(output)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        return index, BatchError("unexpected_output", f"the container answered {exc!r}")


def parse_file(
    text: str, parse: Callable[[Any], Parsed]
) -> list[tuple[int | None, Parsed | BatchError]]:
    found: list[tuple[int | None, Parsed | BatchError]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            continue  # not a record's line: its record is generated online
        found.append(parse_output_line(raw, parse))
    return found
