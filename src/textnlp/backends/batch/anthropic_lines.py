"""Anthropic Message Batches entries (Anthropic API reference, "Create a Message Batch" and
"Retrieve Message Batch results").

Request: ``{"custom_id": "my-first-request", "params": {<a Messages API body with model>}}``.
Result line: ``{"custom_id": ..., "result": {"type": "succeeded", "message": {<a Message>}}}``;
``{"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error",
"message": ...}}}``; ``{"type": "canceled"}``; ``{"type": "expired"}``.
"""

from __future__ import annotations

from typing import Any

from textnlp.backends.batch.base import BatchError, custom_id, index_of
from textnlp.backends.providers import bedrock_anthropic
from textnlp.backends.providers.common import Parsed


def request_entry(index: int, params: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id(index), "params": params}


def parse_result(raw: dict[str, Any]) -> tuple[int | None, Parsed | BatchError]:
    index = index_of(str(raw.get("custom_id") or ""))
    result = raw.get("result") or {}
    kind = str(result.get("type") or "")
    if kind == "succeeded":
        return index, bedrock_anthropic.parse_messages_response(result.get("message") or {})
    if kind == "errored":
        outer = result.get("error") or {}
        inner = outer.get("error") or outer
        return index, BatchError(str(inner.get("type") or "errored"), str(inner.get("message")))
    return index, BatchError(kind or "unknown", f"the request was {kind or 'not processed'}")
