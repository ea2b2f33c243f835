"""Anthropic Message Batches entries (Anthropic API reference, "Create a Message Batch" and
"Retrieve Message Batch results").

Request: ``{"custom_id": "my-first-request", "params": {<a Messages API body with model>}}``.
Result line: ``{"custom_id": ..., "result": {"type": "succeeded", "message": {<a Message>}}}``;
``{"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error",
"message": ...}}}``; ``{"type": "canceled"}``; ``{"type": "expired"}``.

A Message Batch takes no metadata, so the job and part travel in the custom ids of the batch
that is sent: ``j<job>p<part>-<index>`` (``^[a-zA-Z0-9_-]{1,64}$``), and a result is read only
under the prefix of the part it was asked for.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from textnlp.backends.batch.base import BatchError, custom_id, index_of
from textnlp.backends.providers import bedrock_anthropic
from textnlp.backends.providers.common import Parsed

#: The longest job id used as it is in a custom id; a longer (or other) one is hashed.
JOB_CHARS = 32
#: Characters a tagged custom id may have beyond an untagged one (``split`` keeps the room).
TAG_ROOM = 48


def request_entry(index: int, params: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id(index), "params": params}


def part_prefix(job_id: str, part: int) -> str:
    """The custom id prefix of a job's part: ``j<job>p<part>-``."""
    job = job_id
    if not re.fullmatch(rf"[A-Za-z0-9]{{1,{JOB_CHARS}}}", job_id):
        job = hashlib.sha256(job_id.encode()).hexdigest()[:JOB_CHARS]
    return f"j{job}p{part}-"


def tagged(entry: dict[str, Any], prefix: str, index: int) -> dict[str, Any]:
    """``entry`` (of ``request_entry``) under the part's custom id."""
    return {**entry, "custom_id": f"{prefix}{index}"}


def parse_result(
    raw: dict[str, Any], prefix: str = "record-"
) -> tuple[int | None, Parsed | BatchError]:
    """A result line; its index is None unless its custom id has ``prefix``."""
    index = index_of(str(raw.get("custom_id") or ""), prefix)
    result = raw.get("result") or {}
    kind = str(result.get("type") or "")
    if kind == "succeeded":
        return index, bedrock_anthropic.parse_messages_response(result.get("message") or {})
    if kind == "errored":
        outer = result.get("error") or {}
        inner = outer.get("error") or outer
        return index, BatchError(str(inner.get("type") or "errored"), str(inner.get("message")))
    return index, BatchError(kind or "unknown", f"the request was {kind or 'not processed'}")
