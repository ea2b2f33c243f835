"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs throughput and breaks streaming):
request id, body-size bound, metrics, one JSON log line per request, and a tracing span.

A path holding a control character (``%00``, ``%0A``...) answers 404 before any route: no id or
name has one, a NUL would reach the database as a lookup it cannot run, and a final newline
would match a ``{name:path}`` route without it (``$`` matches before it), answering for
another path.

The body bound is ``max_body_bytes`` for every route but those ``body_limits`` names by path
(``POST /v1/files`` takes batch files up to ``api.max_file_bytes``). Under ``/v1`` its 413
answers in OpenAI's error object, so OpenAI clients read it like any other of that surface.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import HTTPException
from opentelemetry import trace
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textnlp.api.errors import error_bytes, path_refusal
from textnlp.deployment import ORIGIN_VERIFY_HEADER
from textnlp.observability.logging import request_id_var
from textnlp.observability.metrics import Metrics
from textnlp.observability.tracing import XRayPropagator, headers_carrier

log = logging.getLogger("textnlp.api.access")
ORIGIN_HEADER = ORIGIN_VERIFY_HEADER.lower().encode()
_PROPAGATOR = XRayPropagator()


class BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parsing lets it through
    (it turns other exceptions into 400) and the error handler renders the 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body over {limit} bytes")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _bad_path(scope: Scope, headers: Mapping[str, str]) -> Response | None:
    """The refusal of a path no route may see, or None: one whose percent-escapes are not UTF-8
    (the server decodes them to U+FFFD, so a name would be stored other than sent; 400), or
    one with a control character (404: nothing is named so)."""
    path = str(scope.get("path", ""))
    try:
        unquote_to_bytes(scope.get("raw_path") or b"").decode("utf-8")
    except UnicodeDecodeError:
        message = "the path's percent-escapes are not UTF-8"
        return path_refusal(scope, 400, "invalid_path", message, "invalid_request_error", headers)
    found = _CONTROL.search(path)
    if found is None:
        return None
    message = f"the path holds a control character (U+{ord(found.group()):04X}): nothing has one"
    return path_refusal(scope, 404, "not_found", message, "invalid_request_error", headers)


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        body_limits: Mapping[str, int] | None = None,
        tracer: trace.Tracer | None = None,
        quiet_routes: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        #: Paths whose bodies have their own bound (larger or smaller than ``max_body``).
        self.body_limits = dict(body_limits or {})
        self.tracer = tracer
        self.quiet_routes = quiet_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or os.urandom(16).hex()
        if len(request_id) > 128:
            request_id = os.urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 500, "sent": False, "streamed": False}
        failed = False
        try:
            if scope["type"] == "http":
                refusal = _bad_path(scope, {"x-request-id": request_id})
                if refusal is not None:
                    await refusal(scope, receive, send)
                    status["code"] = refusal.status_code
                    return
                declared = _header(scope, b"content-length")
                limit = self._limit(scope)
                if declared and declared.isdigit() and int(declared) > limit:
                    await self._send_413(scope, receive, send, request_id)
                    status["code"] = 413
                    return
            await self._call(scope, receive, send, request_id, status)
        except BaseException:
            failed = True
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            method = _method_label(scope)
            self.metrics.observe_request(
                route, method, int(status["code"]), elapsed, streamed=bool(status["streamed"])
            )
            # Successful load-balancer probes are counted in the metrics but logged only at
            # DEBUG: one line per probe per target would bury the requests worth reading.
            quiet = status["code"] == 200 and route in self.quiet_routes
            level = logging.DEBUG if quiet else logging.INFO
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "%s %s %s",
                    method,
                    route,
                    status["code"],
                    extra={"status": status["code"], "duration_ms": round(elapsed * 1000, 3)},
                )
            if not failed:
                # An error escaping the app is logged and answered by Starlette's outermost
                # handler, after this: the id stays set for it (each request is a task of its
                # own, so it does not reach the next request).
                request_id_var.reset(token)

    def _limit(self, scope: Scope) -> int:
        return self.body_limits.get(str(scope.get("path", "")), self.max_body)

    async def _call(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, status: dict[str, Any]
    ) -> None:
        received = 0
        limit = self._limit(scope)

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status["code"] = message["status"]
                status["sent"] = True
                status["streamed"] = _is_event_stream(message.get("headers") or [])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            elif message["type"] == "websocket.accept":
                status["code"], status["streamed"] = 101, True
            elif message["type"] == "websocket.close" and status["code"] != 101:
                status["code"] = 403  # closed before the handshake: the client got a 403
            await send(message)

        try:
            if self.tracer is None:
                await self.app(scope, bounded_receive, tracked_send)
                return
            context = _PROPAGATOR.extract(headers_carrier(scope.get("headers", [])))
            method = _method_label(scope)  # a client's made-up method is "other" here too
            # SERVER: X-Ray makes a segment of the service (not a subsegment of API Gateway's),
            # named after the route template once routing has found it, a request that failed
            # too: never after the raw path, which holds ids and users' file names (and would
            # make a name per request).
            with self.tracer.start_as_current_span(
                method, context=context, kind=trace.SpanKind.SERVER
            ) as span:
                try:
                    await self.app(scope, bounded_receive, tracked_send)
                finally:
                    span.update_name(f"{method} {_route(scope)}")
                    span.set_attribute("http.route", _route(scope))
                    span.set_attribute("http.status_code", int(status["code"]))
        except BodyTooLarge:
            if status["sent"]:
                raise
            status["code"] = 413
            await self._send_413(scope, receive, send, request_id)

    async def _send_413(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        limit = self._limit(scope)
        refusal = path_refusal(
            scope,
            413,
            "payload_too_large",
            f"body over {limit} bytes",
            "invalid_request_error",
            # The rest of the body may still come: the connection cannot carry another request.
            {"x-request-id": request_id, "connection": "close"},
            limit=limit,
        )
        await refusal(scope, receive, send)


def _is_event_stream(headers: Any) -> bool:
    """Whether a response's headers say it is a server-sent event stream."""
    return any(
        name.lower() == b"content-type" and value.startswith(b"text/event-stream")
        for name, value in headers
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _plain_route(scope: Scope) -> Any:
    """The app's own Starlette route that answered (``/docs``, ``/openapi.json``): unlike
    FastAPI's routes, they leave only their endpoint in the scope."""
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return None
    routes = getattr(scope.get("app"), "routes", ())
    return next((r for r in routes if getattr(r, "endpoint", None) is endpoint), None)


def _route(scope: Scope) -> str:
    """The route template (``/api/v1/models/{model_id}``), never the raw path (cardinality)."""
    route = scope.get("route") or _plain_route(scope)
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    # Routes of included routers carry their path below the router's prefix: the prefix is
    # what the concrete path has before the template matches, the shortest such (a ``:path``
    # parameter takes any number of segments, which must not reach the label).
    matched = _template_pattern(str(template)).match(str(scope.get("path", "")))
    # ``{model_id:path}`` labelled as the API documents it, ``{model_id}``.
    return (matched.group(1) if matched else "") + _CONVERTER.sub(r"{\1}", str(template))


_CONVERTER = re.compile(r"\{(\w+):\w+\}")


@functools.lru_cache(maxsize=512)
def _template_pattern(template: str) -> re.Pattern[str]:
    """``(prefix)template$``, its ``{x}`` one segment and its ``{x:path}`` any."""
    pattern = ""
    for literal, parameter in re.findall(r"([^{]*)(\{[^}]*\})?", template):
        pattern += re.escape(literal)
        if parameter:
            pattern += ".+" if parameter.endswith(":path}") else "[^/]+"
    return re.compile(f"(.*?){pattern}$")


#: The methods a metric label may name; any other (a client may send "M1", "M2"...) is
#: "other", so a client cannot grow the metrics' series without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WS"})


def _method_label(scope: Scope) -> str:
    method = str(scope.get("method", "WS"))
    return method if method in _METHODS else "other"


class OriginCheckMiddleware:
    """Refuse what did not come through API Gateway (no ``X-Origin-Verify`` with the deployment's
    secret): 403 for HTTP, close code 1008 for a WebSocket. ``open_paths`` (the health probe,
    which load balancers and container checks call directly) are exempt."""

    def __init__(self, app: ASGIApp, *, secret: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self.secret = secret.encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("path") not in self.open_paths:
            given = (_header(scope, ORIGIN_HEADER) or "").encode("latin-1")
            if not hmac.compare_digest(given, self.secret):
                await self._refuse(scope, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "use the gateway"})
            return
        body = error_bytes("permission_denied", "requests reach this API through its gateway only")
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
