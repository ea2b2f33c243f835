"""OpenAI Batch API lines (OpenAI API reference, "Batch": "The request input object" and "The
request output object").

Input line: ``{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions",
"body": {<a chat completions body>}}``. Output line: ``{"id": "batch_req_123", "custom_id":
"request-1", "response": {"status_code": 200, "request_id": "req_123", "body": {<a
chat.completion>}}, "error": null}``; a request that failed has ``response`` with a 4xx/5xx
``status_code`` and an ``error`` body, or ``response: null`` and ``error: {"code", "message"}``
(in the error file; ``batch_expired`` for the requests an expired batch never ran).
"""

from __future__ import annotations

import json
from typing import Any

from textnlp.backends.batch.base import BatchError, custom_id, index_of
from textnlp.backends.providers import openai as openai_body
from textnlp.backends.providers.common import Parsed

CHAT_URL = "/v1/chat/completions"
COMPLETIONS_URL = "/v1/completions"


def request_line(index: int, body: dict[str, Any], url: str) -> dict[str, Any]:
    return {"custom_id": custom_id(index), "method": "POST", "url": url, "body": body}


def parse_output_line(raw: dict[str, Any]) -> tuple[int | None, Parsed | BatchError]:
    """A line of the output or error file: (record index or None, answer or error)."""
    index = index_of(str(raw.get("custom_id") or ""))
    response = raw.get("response") or {}
    status = response.get("status_code")
    body = response.get("body") or {}
    if status == 200 and not raw.get("error"):
        try:
            return index, openai_body.parse_response(body)
        except ValueError as exc:  # that line's answer is not one: its record fails alone
            return index, BatchError("unexpected_body", str(exc))
    error = raw.get("error") or body.get("error") or {}
    code = str(error.get("code") or error.get("type") or status or "error")
    message = str(error.get("message") or f"HTTP {status}")
    return index, BatchError(code, message)


def parse_file(text: str) -> list[tuple[int | None, Parsed | BatchError]]:
    return [parse_output_line(json.loads(line)) for line in text.splitlines() if line.strip()]
