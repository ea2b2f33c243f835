"""The HTTP protocol of ``textnlp serve``: uvicorn's h11 protocol with a deadline on each
request head, and a lingering close.

uvicorn bounds the wait *between* requests (``timeout_keep_alive``) but not the wait *for* one:
a connection that sends nothing, or a request head one byte at a time (slowloris), is held as
long as the client likes, and any byte of a new request cancels the keep-alive timer. Here a
connection must deliver a complete request head within ``head_timeout_s`` of its opening, and of
each answer it was given; else it is closed, after a ``408`` when part of a head had come (a
connection that sent nothing is simply closed, as a browser's unused pre-connection expects).
The body has its deadline in ``textnlp.api.request_guard``, where an answer can be rendered.

A connection closed while its client is still in a request (after that 408, a 413, a 400)
lingers (``textnlp.api.lingering_close``), so that the client reads the answer rather than a
reset.

The timeout is a class attribute, set by ``textnlp serve`` (``use_head_timeout``) in each
process before it serves: uvicorn builds protocols from the class, and ``--workers`` pickles
it by name into each worker process.

A request that is not HTTP (a malformed head) is answered 400 in the error JSON, not uvicorn's
plain text, so that every refusal a client reads has one shape.

Past ``api.max_connections`` (uvicorn's ``limit_concurrency``) uvicorn answers a request
itself, in plain text; ``overloaded`` answers instead, as the app's own refusals do: the error
JSON (OpenAI's shape under ``/v1``) with ``Retry-After``. uvicorn looks its answer up by name
in its h11 module, where ``use_head_timeout`` puts this one.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import h11
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.h11_impl import H11Protocol

from textnlp.api.errors import error_bytes, path_refusal
from textnlp.api.lingering_close import LingeringTransport

_TIMEOUT_BODY = error_bytes("request_timeout", "the request head did not arrive in time")
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)


def use_head_timeout(seconds: float) -> None:
    ServeProtocol.head_timeout_s = seconds
    h11_impl.service_unavailable = overloaded  # type: ignore[attr-defined,assignment]


async def overloaded(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer to a request past the connection limit (no app, and no route, runs)."""
    from textnlp.api.console.headers import is_console_path

    message = "the server holds as many connections as it may; retry shortly"
    headers = {"Retry-After": "1", "Connection": "close"}
    response: Response
    if is_console_path(str(scope.get("path", ""))):  # its error page needs the app: not here
        body = error_bytes("service_unavailable", message)
        response = Response(body, 503, headers, media_type="application/json")
    else:
        response = path_refusal(scope, 503, "service_unavailable", message, "server_error", headers)
    await response(scope, receive, send)


class ServeProtocol(H11Protocol):
    head_timeout_s: ClassVar[float] = 10.0

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        self._lingering = LingeringTransport(transport, self._mid_request)
        super().connection_made(self._lingering)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._lingering.lingering:
            return  # the answer is sent and the connection closing: the rest is dropped
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_timer is not None and self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is complete (the body, if any, is the guard's)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Unless a pipelined request was already read, the next head starts its clock now.
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._lingering.connection_lost()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a head h11 cannot parse, in the API's error JSON."""
        body = error_bytes("invalid_request", msg)
        headers = [
            (b"content-type", b"application/json"),
            (b"connection", b"close"),
            (b"content-length", str(len(body)).encode()),
        ]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers)))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()

    def _mid_request(self) -> bool:
        """Whether the client may still be sending: part of a head, or of a body, not read."""
        if self.conn.their_state is h11.IDLE:
            return bool(self._head_bytes or self.conn.trailing_data[0])
        return self.conn.their_state in (h11.SEND_BODY, h11.ERROR)  # not a WebSocket's

    def _arm(self) -> None:
        self._disarm()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()
