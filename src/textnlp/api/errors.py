"""The one place that turns exceptions into the API's error JSON ``{"error": {...}}``.

``TextNLPError`` -> its ``http_status`` and ``to_dict()`` (429 answers carry ``Retry-After``,
except a spending cap's); request validation -> 422;
Starlette's HTTP errors (unknown route 404, 405, 413) -> the same shape; anything else -> 500
with no detail (logged with the request id). WebSockets use ``ws_error_message``.

Outages of the platform's own infrastructure arrive here already as ``ServiceUnavailable``:
the adapters map their drivers' errors (the database engine's hook in ``adapters.db.base``,
the SQS and S3 adapters), so this module knows no driver. They answer 503 with
``Retry-After`` and a message that names the dependency only: the adapter's message (which
names a host and port for operators) goes to the log, not to the client. Every 503 (a model
backend's too) carries ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from textnlp.errors import QuotaExceeded, ServiceUnavailable, TextNLPError

log = logging.getLogger("textnlp.api")

#: Seconds a client is told to wait after a 503 that does not say: long enough for a
#: connection pool to reconnect or a database to fail over, short enough for a person.
RETRY_AFTER_UNAVAILABLE_S = 5

_STATUS_TYPES = {
    400: "bad_request",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "quota_exceeded",
    501: "not_implemented",
}


def error_json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def error_bytes(kind: str, message: str, **details: Any) -> bytes:
    """An error body for ASGI middleware, which answers before any route (and FastAPI) runs."""
    return json.dumps({"error": {"type": kind, "message": message, **details}}).encode()


def error_for(exc: TextNLPError) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = getattr(exc, "retry_after", None)
    # A spending cap (a QuotaExceeded without retry_after) gets no Retry-After: waiting
    # does not lift it.
    spending_cap = isinstance(exc, QuotaExceeded) and retry_after is None
    if exc.http_status == 429 and not spending_cap:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after or 1)))
    if exc.http_status == 503:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after or RETRY_AFTER_UNAVAILABLE_S)))
    return exc.http_status, _json_safe(public_body(exc)), headers


def public_body(exc: TextNLPError) -> dict[str, Any]:
    """What a client may read of ``exc``: an outage says which dependency, never where."""
    if isinstance(exc, ServiceUnavailable):
        dependency = str(exc.details.get("dependency") or "service")
        return {
            "type": exc.type,
            "message": f"the {dependency} is unavailable; retry later",
            "dependency": dependency,
        }
    return exc.to_dict()


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors without the input echoed back (it may hold a password)."""
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in errors
    ]


def validation_message(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(part for part in first["loc"] if part != "body") or "body"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def ws_error_message(exc: BaseException) -> dict[str, Any]:
    """The ``{"type": "error", "error": {...}}`` event of a WebSocket (the app's and the API
    Gateway bridge's) for ``exc``; anything not of the tree is logged and told as a 500."""
    if isinstance(exc, TextNLPError):
        error = {**_json_safe(public_body(exc)), "status": exc.http_status}
        retry_after = getattr(exc, "retry_after", None)  # a rate limit's (QuotaExceeded)
        if retry_after is None:
            retry_after = exc.details.get("retry_after")
        if isinstance(retry_after, int | float):
            error["retry_after"] = round(float(retry_after), 3)
        return {"type": "error", "error": error}
    if isinstance(exc, WebSocketRequestValidationError | RequestValidationError | ValidationError):
        errors = validation_errors(exc.errors())
        return {
            "type": "error",
            "error": {
                "type": "validation_error",
                "message": validation_message(errors),
                "errors": errors,
                "status": 422,
            },
        }
    log.error("stream failed", exc_info=exc)
    return {
        "type": "error",
        "error": {"type": "internal_error", "message": "internal error", "status": 500},
    }


def bad_request_message(message: str) -> dict[str, Any]:
    """The WebSocket error event of a frame that is not a request at all (not JSON)."""
    return {"type": "error", "error": {"type": "bad_request", "message": message, "status": 400}}


def sse_error(exc: BaseException) -> dict[str, str]:
    """The Server-Sent Events ``error`` event for ``exc`` (as sse-starlette takes an event):
    ``{"error": {...}}`` as the HTTP body would be, with its status."""
    body = {"error": ws_error_message(exc)["error"]}
    return {"event": "error", "data": json.dumps(body, default=str)}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TextNLPError)
    async def _textnlp(_: Request, exc: TextNLPError) -> JSONResponse:
        status, body, headers = error_for(exc)
        if status >= 500:
            log.error("request failed: %s", exc.message, extra={"error_type": exc.type})
        return error_json(status, body, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        body = {"type": "validation_error", "message": validation_message(errors), "errors": errors}
        return error_json(422, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _STATUS_TYPES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else kind.replace("_", " ")
        return error_json(
            exc.status_code, {"type": kind, "message": message}, dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_json(500, {"type": "internal_error", "message": "internal error"})


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
