"""What uvicorn does not bound for a server facing slow or many clients, as one ASGI guard.

``textnlp serve`` wraps the app in ``RequestGuard`` (outermost, so nothing else runs for a
request it refuses):

- **in-flight limit**: at most ``max_concurrent`` HTTP requests run at once; the next ones answer
  503 ``service_unavailable`` with ``Retry-After: 1`` at once, rather than wait in line behind
  work the server cannot finish in time (the health probe is exempt: a busy task is not a dead
  one, and the load balancer must not take it out of service for being busy);
- **body read deadline**: a request's body must arrive within ``body_timeout_s`` of its head,
  else 408 ``request_timeout`` and the connection is closed (a client trickling a body a byte at a
  time would otherwise hold a request slot as long as it likes).

The request head has its own deadline in the HTTP protocol (``textnlp.api.http_protocol``): an
ASGI app is only called once the head is complete. WebSockets pass through: they are bounded by
uvicorn's connection limit and their frames by the rate limits.
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textnlp.api.errors import path_refusal
from textnlp.deployment import PROBE_PATHS


class BodyReadTimeout(HTTPException):
    """Raised from ``receive`` to unwind the app; an HTTPException so FastAPI's body parsing
    lets it through (the guard has answered 408 already)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s")


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int,
        body_timeout_s: float,
        exempt_paths: frozenset[str] = PROBE_PATHS,
    ) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.body_timeout_s = body_timeout_s
        self.exempt_paths = exempt_paths
        #: Requests in progress; one event loop per process, so a plain counter.
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent and scope.get("path") not in self.exempt_paths:
            await self._refuse(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._call(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _has_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        state = {"body_done": False, "started": False, "timed_out": False}

        async def receive_by_deadline() -> Message:
            if state["body_done"]:  # later reads wait for a disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await timed_out()
                raise BodyReadTimeout(self.body_timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def timed_out() -> None:
            if not state["started"] and not state["timed_out"]:
                await self._send_408(scope, receive, send)
            state["timed_out"] = True

        async def tracked_send(message: Message) -> None:
            if state["timed_out"]:
                return  # the 408 has been sent; the app's own answer to it is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, receive_by_deadline, tracked_send)
        except BodyReadTimeout:
            await timed_out()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = path_refusal(
            scope,
            503,
            "service_unavailable",
            f"the server has {self.max_concurrent} requests in progress, its limit; retry shortly",
            "server_error",
            {"retry-after": "1"},
            limit=self.max_concurrent,
        )
        await refusal(scope, receive, send)

    async def _send_408(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = path_refusal(
            scope,
            408,
            "request_timeout",
            f"the request body did not arrive within {self.body_timeout_s:g} s",
            "invalid_request_error",
            # The rest of the body may still come: the connection cannot carry another request.
            {"connection": "close"},
            timeout_s=self.body_timeout_s,
        )
        await refusal(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
