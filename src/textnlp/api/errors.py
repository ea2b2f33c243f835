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

Under ``/v1`` (the OpenAI-compatible surface, ``textnlp.api.openai``) the same errors answer
in OpenAI's error object, ``{"error": {"message", "type", "param", "code"}}``, with OpenAI's
statuses, so OpenAI clients raise their own exception classes (``openai_error_for``):

- body validation and every ``InvalidInput`` -> 400 ``invalid_request_error`` (not 422), with
  ``param`` naming the field; ``NotFound`` -> 404 (an unknown model: ``code:
  model_not_found``, ``param: model``); ``ContextWindowExceeded`` -> 400 ``code:
  context_length_exceeded``;
- ``AuthError`` -> 401 ``code: invalid_api_key`` (403 ``permission_denied``);
- a rate limit -> 429 ``type: requests``, ``code: rate_limit_exceeded`` with ``Retry-After``
  and ``x-ratelimit-*`` headers; a spending cap -> 429 ``insufficient_quota``;
- 5xx keep their status with ``type: server_error`` and the tree's type as ``code``.

Under ``/console`` (the web console, ``textnlp.api.console``) they answer as HTML:
``textnlp.api.console.errors`` draws the page (no session: a redirect to the login page).

Errors of the ASGI middleware (413, 408, 503 when overloaded, a path no route may see) answer
before any route, in the shape of the route they refuse (``path_refusal``: the console's page
under ``/console`` too).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from textnlp.api.openai.ratelimit import refused_headers
from textnlp.errors import (
    AuthError,
    ContextWindowExceeded,
    InvalidInput,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    ServiceUnavailable,
    TextNLPError,
    outage_dependency,
    public_message,
)
from textnlp.extras import missing_extra
from textnlp.observability.logging import request_id_var

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


def path_refusal(
    scope: Scope,
    status: int,
    kind: str,
    message: str,
    openai_type: str,
    headers: Mapping[str, str] | None = None,
    **details: Any,
) -> Response:
    """A middleware's refusal, in the shape of the route it refuses: the console's error page
    under ``/console``, OpenAI's error object under ``/v1`` (``type`` is ``openai_type``,
    ``code`` the native kind), else the native one."""
    from textnlp.api.console.errors import console_error
    from textnlp.api.console.headers import is_console_path

    path = str(scope.get("path", ""))
    response: Response
    if is_console_path(path):
        response = console_error(Request(scope), status, message, None)
    elif is_openai_path(path):
        body = {"message": message, "type": openai_type, "param": None, "code": kind}
        response = JSONResponse({"error": body}, status_code=status)
    else:
        response = JSONResponse({"error": {"type": kind, "message": message, **details}}, status)
    response.headers.update(headers or {})
    return response


def error_for(exc: TextNLPError) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.http_status == 426:
        headers["Upgrade"] = "websocket"
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
    """What a client may read of ``exc``: its ``to_dict()`` with ``public_message``'s text (the
    one owner of that choice, which a job's error uses too); an outage's body names its
    dependency alone."""
    if isinstance(exc, ServiceUnavailable):
        dependency = outage_dependency(exc)
        return {"type": exc.type, "message": public_message(exc), "dependency": dependency}
    return {**exc.to_dict(), "message": public_message(exc)}


def validation_errors(
    errors: Any, content_type: str | None = None, body: Any = None
) -> list[dict[str, Any]]:
    """Pydantic's errors without the input echoed back (it may hold a password). Given the
    request's ``content_type``, a body that was not read as JSON says so (FastAPI reads a body
    sent without ``application/json`` as bytes, which pydantic calls "not a valid dictionary").
    Given the ``body``, each ``loc`` is the field's path in it (see ``_sent_path``)."""
    found = [_validation_error(error) for error in errors]
    if body is not None:
        for error in found:
            error["loc"] = _sent_path(error["loc"], body)
    json_sent = content_type is None or "json" in content_type.lower()
    if (
        found
        and found[0]["loc"] == ["body"]
        and found[0]["type"] in _NOT_AN_OBJECT
        and not json_sent
    ):
        found[0]["msg"] = (
            f"not read as JSON: send it with 'Content-Type: application/json' (it came as "
            f"{content_type or 'no content type'!r})"
        )
    return found


#: Pydantic's error types of a body that is no JSON object (bytes, a string).
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})


def _validation_error(error: Any) -> dict[str, Any]:
    loc = [str(part) for part in error.get("loc", ())]
    msg = str(error.get("msg", "")).removeprefix("Value error, ")  # a validator's own words
    if error.get("type") == "json_invalid":  # FastAPI puts the offset where a field would be
        reason = str((error.get("ctx") or {}).get("error") or msg)
        reason = reason.removesuffix(" at")  # json's "Invalid control character at"
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        loc, msg = loc[:1], f"invalid JSON: {reason}{at}"
    return {"loc": loc, "msg": msg, "type": str(error.get("type", ""))}


def _sent_path(loc: list[str], body: Any) -> list[str]:
    """``loc`` without the parts pydantic adds that are not in what the client sent: a tagged
    union's tag (``response_format.json_schema.json_schema.name``) or a union member's name
    (``prompt.list.0``). A last part an object lacks stays: it names a missing field."""
    if loc[:1] != ["body"] or not isinstance(body, Mapping | list):
        return loc
    path, here = ["body"], body
    for i, part in enumerate(loc[1:], start=1):
        if isinstance(here, Mapping) and part in here:
            here = here[part]
        elif isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
        elif not (isinstance(here, Mapping) and i == len(loc) - 1):
            continue  # not in the value sent: pydantic's own label
        path.append(part)
    return path


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


async def refuse_websocket(websocket: WebSocket, exc: TextNLPError) -> None:
    """A WebSocket handshake refused as an HTTP route answers (401, 429 with ``Retry-After``)
    where the server can send an answer (ASGI's denial-response extension, which uvicorn has);
    else closed with code 1008, which the server answers 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        status, body, headers = error_for(exc)
        await websocket.send_denial_response(error_json(status, body, headers))
    else:
        await websocket.close(code=1008, reason=public_message(exc)[:120])


def invalid_json_message(reason: str) -> dict[str, Any]:
    """The WebSocket error event of a frame that is not JSON, as the HTTP route words a body
    that is not (a 422 ``validation_error``, ``body: invalid JSON: ...``)."""
    errors = [{"loc": ["body"], "msg": f"invalid JSON: {reason}", "type": "json_invalid"}]
    error = {"type": "validation_error", "message": validation_message(errors), "errors": errors}
    return {"type": "error", "error": {**error, "status": 422}}


def bad_request_message(message: str) -> dict[str, Any]:
    """The WebSocket error event of a frame that is not a request at all (not JSON)."""
    return {"type": "error", "error": {"type": "bad_request", "message": message, "status": 400}}


def sse_error(exc: BaseException) -> dict[str, str]:
    """The Server-Sent Events ``error`` event for ``exc`` (as sse-starlette takes an event):
    ``{"error": {...}}`` as the HTTP body would be, with its status."""
    body = {"error": ws_error_message(exc)["error"]}
    return {"event": "error", "data": json.dumps(body, default=str)}


# OpenAI's error object (/v1) -------------------------------------------------------------------
OPENAI_PATH_PREFIX = "/v1/"


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PATH_PREFIX) or path == OPENAI_PATH_PREFIX.rstrip("/")


def openai_json(
    status: int,
    message: str,
    kind: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"message": message, "type": kind, "param": param, "code": code}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def openai_error_for(
    exc: TextNLPError, path: str = ""
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``exc`` as OpenAI answers it on ``path``: (status, the ``error`` object, headers)."""
    status, public, headers = error_for(exc)
    param = exc.details.get("parameter")
    code: str | None = exc.type
    kind = "invalid_request_error"
    if isinstance(exc, ModelNotFound):
        param, code = "model", "model_not_found"
    elif isinstance(exc, ContextWindowExceeded):  # /v1/completions has a prompt, not messages
        text_completions = path.rstrip("/").endswith("/v1/completions")
        param, code = ("prompt" if text_completions else "messages"), "context_length_exceeded"
    elif isinstance(exc, PermissionDenied):
        code = "permission_denied"
    elif isinstance(exc, AuthError):
        code = "invalid_api_key"
    elif isinstance(exc, QuotaExceeded) and exc.retry_after is None:  # a spending cap
        kind = code = "insufficient_quota"
    elif status == 429:
        kind, code = "requests", "rate_limit_exceeded"
        headers |= refused_headers(exc.details, getattr(exc, "retry_after", None) or 1.0)
    elif status >= 500:
        kind = "server_error"
    if isinstance(exc, InvalidInput) and not isinstance(exc, NotFound):
        status = 400  # OpenAI answers every invalid request 400; 422 is ours
    if status == 409:  # the SDK retries a 409 (a lock timeout at OpenAI's); ours are states
        headers = {**headers, "x-should-retry": "false"}
    body = {
        "message": str(public["message"]),
        "type": kind,
        "param": str(param) if param is not None else None,
        "code": code,
    }
    return status, body, headers


def openai_validation(errors: list[dict[str, Any]]) -> JSONResponse:
    """A body that does not parse or validate: 400, ``param`` naming the first field."""
    first = errors[0] if errors else {"loc": [], "type": ""}
    if first["type"] == "json_invalid":
        reason = str(first["msg"]).removeprefix("invalid JSON: ")
        return openai_json(400, f"could not parse the JSON body: {reason}", "invalid_request_error")
    param = ".".join(part for part in first["loc"] if part != "body") or None
    return openai_json(400, validation_message(errors), "invalid_request_error", param)


def openai_sse_error(exc: BaseException) -> dict[str, str]:
    """A failure in the middle of an OpenAI stream: ``data: {"error": {...}}``, which the
    ``openai`` SDK raises as ``APIError``."""
    if isinstance(exc, TextNLPError):
        status, body, _ = openai_error_for(exc)
        if status >= 500:
            log.error("stream failed: %s", exc.message, extra={"error_type": exc.type})
    else:
        log.error("stream failed", exc_info=exc)
        body = {"message": "internal error", "type": "server_error", "param": None, "code": None}
    return {"data": json.dumps({"error": body}, ensure_ascii=False)}


async def _missing_extra(request: Request, exc: Exception) -> Response:
    """A package of an extra is not installed (a route of ``validation`` on a server without it):
    its ``MissingExtra`` is rendered as any TextNLPError is, for the API, the console or /v1."""
    missing = missing_extra(exc) if isinstance(exc, ModuleNotFoundError) else None
    if missing is None:
        raise exc  # textnlp's own module missing is a bug: the unexpected-error handler's
    handler = request.app.exception_handlers[TextNLPError]
    response: Response = await handler(request, missing)
    return response


def _with_request_id(response: Response) -> Response:
    request_id = request_id_var.get()
    if request_id != "-":
        response.headers["x-request-id"] = request_id
    return response


async def _pool_exhausted(request: Request, exc: Exception) -> Response:
    """SQLAlchemy's pool ``TimeoutError``: every connection of this process stayed in use for
    ``database.pool_timeout_s``; a 503 with Retry-After, as any database outage."""
    busy = ServiceUnavailable(
        "every database connection of this process is in use", dependency="database"
    )
    handler = request.app.exception_handlers[TextNLPError]
    response: Response = await handler(request, busy)
    return response


def install_error_handlers(app: FastAPI) -> None:
    # The console draws its errors as pages; its modules use this one's SSE and WebSocket
    # renderings, so it is imported when the app is built, not when this module is.
    from textnlp.api.console.errors import console_error
    from textnlp.api.console.headers import is_console_path

    @app.exception_handler(TextNLPError)
    async def _textnlp(request: Request, exc: TextNLPError) -> Response:
        openai = is_openai_path(request.url.path)
        status, body, headers = (
            openai_error_for(exc, request.url.path) if openai else error_for(exc)
        )
        if status >= 500:
            log.error("request failed: %s", exc.message, extra={"error_type": exc.type})
        if is_console_path(request.url.path):
            return console_error(request, status, str(body["message"]), exc)
        if openai:
            return JSONResponse({"error": body}, status_code=status, headers=headers)
        return error_json(status, body, headers)

    app.add_exception_handler(ModuleNotFoundError, _missing_extra)
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app.add_exception_handler(PoolTimeout, _pool_exhausted)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        content_type = request.headers.get("content-type", "")
        errors = validation_errors(exc.errors(), content_type, exc.body)
        if is_console_path(request.url.path):
            return console_error(request, 422, validation_message(errors), None)
        if is_openai_path(request.url.path):
            return openai_validation(errors)
        body = {"type": "validation_error", "message": validation_message(errors), "errors": errors}
        return error_json(422, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = _STATUS_TYPES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else kind.replace("_", " ")
        message = _UNPARSED_BODY.get(type(exc.__cause__), message)
        headers = dict(exc.headers or {})
        if is_console_path(request.url.path):
            return console_error(request, exc.status_code, message, None)
        if is_openai_path(request.url.path):
            code = "unknown_url" if exc.status_code == 404 else kind
            if exc.status_code == 404:
                message = f"Invalid URL ({request.method} {request.url.path})"
            return openai_json(
                exc.status_code, message, "invalid_request_error", None, code, headers
            )
        return error_json(exc.status_code, {"type": kind, "message": message}, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette runs this outside every middleware: the request id is the one the request
        # context left set for it, and the answer carries it as every other answer does.
        log.exception("unhandled error", exc_info=exc)
        if is_console_path(request.url.path):
            response = console_error(request, 500, "internal error", None)
        elif is_openai_path(request.url.path):
            response = openai_json(500, "internal error", "server_error")
        else:
            response = error_json(500, {"type": "internal_error", "message": "internal error"})
        return _with_request_id(response)


#: Why FastAPI could not parse a JSON body (it says only "There was an error parsing the body",
#: and keeps the reason as the 400's cause).
_UNPARSED_BODY = {
    UnicodeDecodeError: "the body is not UTF-8 JSON",
    RecursionError: "the body's JSON is nested too deeply",
}


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
