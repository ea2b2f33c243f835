"""What the sync and async clients share: request bodies, error parsing, token bookkeeping."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent

from textnlp.api.schemas import GenerateTextRequest, InvokeRequest, TokenResponse
from textnlp.errors import TextNLPError, quoted

API = "/api/v1"
#: Refresh an access token this many seconds before it expires.
REFRESH_MARGIN_S = 30.0
#: A job's id: 32 lowercase hexadecimal characters (``uuid4().hex``, as the API makes them).
JOB_ID = re.compile(r"[0-9a-f]{32}")


class ApiError(TextNLPError):
    """An error answer of the API: ``status``, ``type`` and the whole error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        details = {k: v for k, v in body.items() if k not in {"type", "message"}}
        super().__init__(str(body.get("message", f"HTTP {status}")), **details)
        self.status = status
        self.type = str(body.get("type", "http_error"))
        self.http_status = status
        self.user_error = 400 <= status < 500
        self.body = body

    def to_dict(self) -> dict[str, Any]:
        return dict(self.body)


def raise_for_error(response: httpx.Response) -> None:
    """``ApiError`` for any answer but a success: a redirect too, which the client does not
    follow (the API makes none; a 307 to ``/uploads`` was taken for a deleted upload)."""
    if response.is_redirect:
        where = response.headers.get("location", "elsewhere")
        body = {"type": "http_error", "message": f"unexpected redirect to {quoted(where)}"}
        raise ApiError(response.status_code, body)
    if response.status_code >= 400:
        raise _api_error(response.status_code, response.content, response.reason_phrase)


def handshake_error(refused: Any) -> ApiError:
    """A WebSocket handshake the server answered with an error (``websockets``'
    ``InvalidStatus``), as the ``ApiError`` the same answer to an HTTP request raises."""
    response = refused.response
    return _api_error(response.status_code, response.body, response.reason_phrase)


def _api_error(status: int, content: bytes, reason: str) -> ApiError:
    try:
        body = json.loads(content).get("error", {})
    except (ValueError, AttributeError):  # not JSON, not UTF-8, not an object
        body = {}
    if not isinstance(body, dict) or "message" not in body:
        text = content.decode("utf-8", errors="replace")[:200]
        body = {"type": "http_error", "message": text or reason}
    return ApiError(status, body)


@dataclass
class TokenState:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: float = 0.0
    api_key: str | None = None

    def update(self, tokens: TokenResponse) -> None:
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token
        self.expires_at = time.monotonic() + tokens.expires_in

    def clear(self) -> None:
        self.access_token = self.refresh_token = None
        self.expires_at = 0.0

    def headers(self) -> dict[str, str]:
        credential = self.api_key or self.access_token
        return {"Authorization": f"Bearer {credential}"} if credential else {}

    def should_refresh(self) -> bool:
        return (
            self.api_key is None
            and self.refresh_token is not None
            and time.monotonic() > self.expires_at - REFRESH_MARGIN_S
        )

    def can_refresh(self) -> bool:
        return self.api_key is None and self.refresh_token is not None


def job_path(job_id: str, action: str = "") -> str:
    """The route of job ``job_id`` (``action``: ``/cancel``, ``/results``). What is no job id
    names no job, answered as the API would (404) without asking it: in a path, ``<id>/results``
    or ``x/../<id>`` would name another route or another job."""
    if not JOB_ID.fullmatch(job_id):
        message = f"no job {quoted(job_id)}: not a job id (32 hexadecimal characters)"
        raise ApiError(404, {"type": "not_found", "message": message})
    return f"/generate/status/{job_id}{action}"


def upload_path(name: str) -> str:
    """The upload route of the file ``name``, escaped: its ``#``, ``?`` and ``%`` are part of
    the name, never of the URL (``..`` too, which would be a step up). A name with a ``/`` is
    refused (422) unsent, as the service refuses it: the route takes no ``/``, even escaped."""
    if "/" in name or not name:
        message = f"upload name {name!r} must be a file name, without '/'"
        raise ApiError(422, {"type": "invalid_input", "message": message})
    escaped = quote(name, safe="")
    if escaped.strip(".") == "":
        escaped = "%2E" * len(name)
    return f"/generate/batch/uploads/{escaped}"


def generate_body(**fields: Any) -> dict[str, Any]:
    """A checked ``POST generate/text`` body (unknown fields fail here, not on the server)."""
    given = {k: v for k, v in fields.items() if v is not None}
    return GenerateTextRequest(**given).model_dump(mode="json", exclude_unset=True)


def invoke_body(**fields: Any) -> dict[str, Any]:
    given = {k: v for k, v in fields.items() if v is not None}
    return InvokeRequest(**given).model_dump(mode="json", exclude_unset=True)


def sse_chunk(event: ServerSentEvent) -> dict[str, Any] | None:
    """The chunk of one SSE event of a completion stream; None at ``[DONE]``. An ``error``
    event raises ``ApiError`` with the status it carries."""
    if event.data == "[DONE]":
        return None
    payload: dict[str, Any] = json.loads(event.data)
    if event.event == "error":
        error = payload.get("error") or {"message": "stream failed"}
        raise ApiError(int(error.get("status", 502)), error)
    return payload


def stream_url(base_url: httpx.URL) -> str:
    """The WebSocket ``generate/stream`` URL of the API at ``base_url``."""
    scheme = "wss" if base_url.scheme == "https" else "ws"
    return str(base_url.copy_with(scheme=scheme, path=API + "/generate/stream"))


def stream_message(body: dict[str, Any]) -> str:
    """A checked WebSocket request (``stream`` is implied by the socket)."""
    return json.dumps({k: v for k, v in body.items() if k != "stream"})


def stream_event(raw: str | bytes) -> dict[str, Any]:
    """One server message: ``token`` or ``done``; an ``error`` message raises ``ApiError``."""
    event: dict[str, Any] = json.loads(raw)
    if event.get("type") == "error":
        error = event.get("error") or {"message": "stream failed"}
        raise ApiError(int(error.get("status", 400)), error)
    return event
