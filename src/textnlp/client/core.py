"""What the sync and async clients share: request bodies, error parsing, token bookkeeping,
when to ask again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent
from pydantic import BaseModel, ValidationError

from textnlp.api.schemas import GenerateTextRequest, InvokeRequest, TokenResponse
from textnlp.domain.jobs import JOB_ID
from textnlp.errors import ApiError, ApiUnreachable, first_error, quoted

API = "/api/v1"
#: Refresh an access token this many seconds before it expires.
REFRESH_MARGIN_S = 30.0
#: Answers that say the request was not served and may be sent again (rate limit, overload).
RETRY_STATUSES = frozenset({429, 503})
#: The longest wait before asking again (a longer ``Retry-After`` is the caller's to wait).
MAX_RETRY_WAIT_S = 30.0

M = TypeVar("M", bound=BaseModel)


@contextmanager
def reaching(
    base_url: object, failures: tuple[type[Exception], ...] = (httpx.TransportError,)
) -> Iterator[None]:
    """Transport ``failures`` (refused, reset, timed out, a URL without a scheme) as
    ``ApiUnreachable``, an ``ApiError`` as every other failure of the client. (Not any
    ``OSError``: a full disk under ``download_results`` is the caller's own.)"""
    try:
        yield
    except failures as exc:
        raise ApiUnreachable(str(base_url).rstrip("/"), exc) from None


def retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: not what this API sends
        return None


def retry_wait(response: httpx.Response, attempt: int) -> float | None:
    """How long to wait before sending again a request ``response`` refused (``attempt``:
    how many were sent), or None when it is not to be sent again."""
    if response.status_code not in RETRY_STATUSES:
        return None
    wait = retry_after(response.headers)
    if wait is None and response.status_code == 429 and _error_type(response) == "quota_exceeded":
        return None  # a spending cap or the uploads' quota: waiting does not help
    wait = 0.5 * 2**attempt if wait is None else wait
    return wait if wait <= MAX_RETRY_WAIT_S else None


def _error_type(response: httpx.Response) -> str | None:
    """The API's error type of an error answer (None: not the API's error JSON, e.g. API
    Gateway's own throttling, ``{"message": "Too Many Requests"}``)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def stored_file_location(response: httpx.Response) -> str:
    """Where a results download's redirect points (on S3 storage the API answers 307 to a
    presigned URL): an absolute http(s) URL, fetched without the API's credential (S3 refuses a
    second authentication, and the token is not S3's to see); ``ApiError`` for anything else."""
    location = str(response.headers.get("location", ""))
    if httpx.URL(location).scheme not in {"http", "https"}:
        raise_for_error(response)
    return location


def origin_of(url: str) -> str:
    """A URL's scheme and host, for an error's words (a presigned URL's query is a signature)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}"


def raise_for_error(response: httpx.Response) -> None:
    """``ApiError`` for any answer but a success: a redirect too, which the client does not
    follow (but a results download's, ``stored_file_location``; a 307 to ``/uploads`` was taken
    for a deleted upload)."""
    if response.is_redirect:
        where = response.headers.get("location", "elsewhere")
        body = {"type": "http_error", "message": f"unexpected redirect to {quoted(where)}"}
        raise ApiError(response.status_code, body)
    if response.status_code >= 400:
        error = _api_error(response.status_code, response.content, response.reason_phrase)
        error.retry_after = retry_after(response.headers)
        raise error


def parsed(response: httpx.Response, model: type[M]) -> M:
    """The answer's body as ``model``; ``ApiError`` 502 when it is not one (a proxy's page,
    another server)."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise unexpected_body(response, first_error(exc, root="answer")) from None


def parsed_json(response: httpx.Response) -> Any:
    """The answer's JSON; ``ApiError`` 502 when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise unexpected_body(response, "not JSON") from None


def field(answer: Any, name: str, response: httpx.Response) -> Any:
    """``answer[name]``; ``ApiError`` 502 when the answer has no such field."""
    if not isinstance(answer, dict) or name not in answer:
        raise unexpected_body(response, f"no {name!r}")
    return answer[name]


def unexpected_body(response: httpx.Response, why: str) -> ApiError:
    kind = response.headers.get("content-type", "no content type")
    message = f"the API answered {response.url.path} with an unexpected body ({why}; {kind})"
    return ApiError(502, {"type": "bad_response", "message": message})


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
    return f"/generate/batch/uploads/{_segment(name)}"


def model_path(model_id: str, action: str = "") -> str:
    """The route of model ``model_id``, escaped: its ``/`` (``org/llama3``), ``?`` and ``#``
    are part of the id, never of the URL."""
    return f"/models/{_segment(model_id)}{action}"


def key_path(key_id: str) -> str:
    return f"/auth/api-keys/{_segment(key_id) or '%20'}"


def _segment(text: str) -> str:
    """``text`` as one path segment: every ``/``, ``?``, ``#`` and ``%`` escaped, and a name of
    dots alone too (``.`` and ``..`` are steps in a path)."""
    escaped = quote(text, safe="")
    return "%2E" * len(text) if escaped.strip(".") == "" else escaped


def generate_body(fields: dict[str, Any], *, stream: bool | None) -> dict[str, Any]:
    """A checked ``POST generate/text`` body of a method's ``fields``: a wrong one is the
    ``ApiError`` 422 the server would answer, before anything is sent. ``stream`` is the
    method's to set (``generate`` answers whole, ``stream`` in pieces)."""
    if "stream" in fields:
        message = "stream: set by the method: generate() answers whole, stream() in pieces"
        raise ApiError(422, {"type": "validation_error", "message": message})
    body = _checked(GenerateTextRequest, fields)
    if stream is not None:
        body["stream"] = stream
    return body


def invoke_body(fields: dict[str, Any]) -> dict[str, Any]:
    return _checked(InvokeRequest, fields)


def _checked(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    given = {k: v for k, v in fields.items() if v is not None}
    try:
        return model.model_validate(given).model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        message = first_error(exc, extra="unknown field")
        raise ApiError(422, {"type": "validation_error", "message": message}) from None


def sse_chunk(event: ServerSentEvent) -> dict[str, Any] | None:
    """The chunk of one SSE event of a completion stream; None at ``[DONE]``. An ``error``
    event raises ``ApiError`` with the status it carries."""
    if event.data == "[DONE]":
        return None
    payload: dict[str, Any] = json.loads(event.data)
    if event.event == "error":
        error = payload.get("error") or {"message": "stream failed"}
        raise ApiError(_status(error, 502), error)
    return payload


def _status(error: dict[str, Any], default: int) -> int:
    status = error.get("status")
    return status if isinstance(status, int) and 400 <= status <= 599 else default


def stream_url(base_url: httpx.URL) -> str:
    """The WebSocket ``generate/stream`` URL of the API at ``base_url``."""
    scheme = "wss" if base_url.scheme == "https" else "ws"
    return str(base_url.copy_with(scheme=scheme, path=API + "/generate/stream"))


def stream_message(body: dict[str, Any]) -> str:
    """A checked WebSocket request (``stream`` is implied by the socket)."""
    return json.dumps({k: v for k, v in body.items() if k != "stream"})


def stream_cut(base_url: object, closed: Exception) -> ApiUnreachable:
    """A WebSocket stream closed before its ``done`` event (the server stopped: 1012 on a
    restart; the connection dropped), or silent past the read timeout: ``ApiUnreachable``, as
    a Server-Sent Events stream cut short, never the socket library's own error nor an answer
    taken for whole."""
    if isinstance(closed, TimeoutError):
        closed = TimeoutError("no message within the read timeout")
    return ApiUnreachable(str(base_url).rstrip("/"), closed)


def stream_event(raw: str | bytes) -> dict[str, Any]:
    """One server message: ``token`` or ``done``; an ``error`` message raises ``ApiError``."""
    event: dict[str, Any] = json.loads(raw)
    if event.get("type") == "error":
        error = event.get("error") or {"message": "stream failed"}
        raise ApiError(_status(error, 400), error)
    return event
