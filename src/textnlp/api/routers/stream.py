"""``/api/v1/generate/stream``: a WebSocket that streams tokens as they come.

Authenticate with ``Authorization: Bearer ...`` or ``?access_token=...`` (browsers cannot set
headers on a WebSocket). Then send requests, one at a time, in the body format of
``POST /generate/text``; the server answers ``{"type": "token", "text"}`` per piece and
``{"type": "done", "finish_reason", "usage"}`` at the end, or ``{"type": "error", "error"}``.
A handshake with bad credentials, or over the rate limit, is refused with the HTTP answer a
route gives (401, 429 with ``Retry-After``). A binary frame is not a request: it answers an
error event and the socket stays open for the next one. Every request frame is checked as an
HTTP request is: the credential again (a logout, an expired token, a revoked key or a disabled
user answers an ``unauthorized`` error event and closes the socket, code 1008), and a token
from the caller's rate-limit bucket (the handshake took one too; an empty bucket answers a
``quota_exceeded`` error event with ``retry_after``, and the socket stays open). Between frames
and during a generation the credential is checked again every few seconds
(``deps.CredentialWatch``): a socket, idle or streaming, does not outlive it. A user holds at
most ``api.max_websockets_per_user`` sockets at once (the next handshake answers 429), and a
socket without a request for ``api.websocket_idle_s`` is closed (1001).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Response, WebSocket, WebSocketDisconnect

from textnlp.api.deps import RECHECK_S, CredentialWatch, authenticate_async, bearer_of
from textnlp.api.errors import (
    bad_request_message,
    invalid_json_message,
    refuse_websocket,
    ws_error_message,
)
from textnlp.api.open_sockets import OpenSockets
from textnlp.api.schemas import ErrorResponse, StreamRequest
from textnlp.api.serving import CompletionsServing
from textnlp.errors import AuthError, TextNLPError, UpgradeRequired

router = APIRouter(prefix="/generate", tags=["generate"])
log = logging.getLogger("textnlp.api")


def _credential(websocket: WebSocket) -> str | None:
    return (
        bearer_of(websocket)
        or websocket.query_params.get("access_token")
        or websocket.headers.get("x-api-key")
    )


@router.get(
    "/stream",
    summary="Stream tokens (WebSocket)",
    status_code=101,
    responses={
        101: {"description": "Switched to the WebSocket protocol: send requests as text frames."},
        426: {"model": ErrorResponse, "description": "Asked without a WebSocket upgrade."},
    },
    response_class=Response,
)
def stream_handshake() -> Response:
    """A WebSocket (``ws://`` or ``wss://``): authenticate with ``Authorization: Bearer ...``
    or ``?access_token=...``, then send each request as a text frame in the body format of
    ``POST /generate/text``. The answers are JSON frames: ``{"type": "token", "text"}`` per
    piece, then ``{"type": "done", "model", "finish_reason", "usage"}``, or ``{"type":
    "error", "error"}``. A handshake with bad credentials or over the rate limit gets the HTTP
    answer a route gives (401, 429); a plain HTTP request, 426."""
    raise UpgradeRequired(
        "this route is a WebSocket: connect with ws:// or wss:// (an Upgrade: websocket request)"
    )


@router.websocket("/stream")
async def stream_tokens(websocket: WebSocket) -> None:
    credential = _credential(websocket)
    sockets: OpenSockets = websocket.app.state.open_sockets
    try:
        principal = await authenticate_async(websocket, credential)
        sockets.acquire(principal.bucket)  # a user's keys and tokens count together
    except TextNLPError as exc:
        await refuse_websocket(websocket, exc)
        return
    try:
        await _serve(websocket, credential)
    finally:
        sockets.release(principal.bucket)


async def _serve(websocket: WebSocket, credential: str | None) -> None:
    await websocket.accept()
    serve: CompletionsServing = websocket.app.state.serving
    idle_s = websocket.app.state.settings.api.websocket_idle_s
    watch = CredentialWatch.of(websocket, credential)
    loop = asyncio.get_running_loop()
    heard = loop.time()
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), RECHECK_S)
            except TimeoutError:  # idle: the credential must still stand
                if not await _still_stands(websocket, watch):
                    return
                if loop.time() - heard >= idle_s:
                    await websocket.close(code=1001, reason=f"idle for {idle_s:g} s")
                    return
                continue
            heard = loop.time()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                await websocket.send_json(bad_request_message("send each request as a text frame"))
                continue
            try:
                # Each frame is a request: one socket must not outlive its credential nor
                # serve generations unlimited.
                principal = await authenticate_async(websocket, credential)
            except AuthError as exc:
                await websocket.send_json(ws_error_message(exc))
                await websocket.close(code=1008)  # policy violation: the credential is gone
                return
            except TextNLPError as exc:
                await websocket.send_json(ws_error_message(exc))
                continue
            if not await _answer(websocket, serve, raw, principal.id, watch):
                return
    except WebSocketDisconnect:
        return


async def _still_stands(websocket: WebSocket, watch: CredentialWatch) -> bool:
    """False, once the client is told why and the socket closed, when the credential is gone."""
    try:
        await watch.check()
    except AuthError as exc:
        await websocket.send_json(ws_error_message(exc))
        await websocket.close(code=1008)  # policy violation: the credential is gone
        return False
    return True


async def _answer(
    websocket: WebSocket, serve: CompletionsServing, raw: str, owner: str, watch: CredentialWatch
) -> bool:
    """Stream one request's events; False when the credential went meanwhile (closed)."""
    events = stream_events(serve, raw, owner)
    try:
        async for event in events:
            await websocket.send_json(event)
            if not await _still_stands(websocket, watch):
                return False  # the generation stops with its stream, freeing the slot
    finally:
        await events.aclose()
    return True


async def stream_events(
    serve: CompletionsServing, raw: str, owner: str
) -> AsyncGenerator[dict[str, Any], None]:
    """The events answering one stream request (a JSON frame): ``token``... then ``done``, or
    one ``error``. Shared by this WebSocket and the API Gateway WebSocket bridge."""
    try:
        # Parsed as an HTTP body is (json, then the model): a lone surrogate is then named as
        # invalid text rather than as invalid JSON, and NaN is refused by the model.
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        yield invalid_json_message(f"{exc.msg} at character {exc.pos}")
        return
    except RecursionError:
        yield invalid_json_message("nested too deeply")
        return
    except ValueError:  # Python's bound on an integer's digits (4300)
        yield invalid_json_message("a number in it has too many digits")
        return
    try:
        body = StreamRequest.model_validate(payload)
        model_id = serve.model_id(body.model)
        request = serve.requests_for(body)[0]
        await serve.admit(owner, model_id, [request])
        async for event in serve.stream(model_id, request, owner):
            if event.text:
                yield {"type": "token", "text": event.text}
            if event.finish_reason is not None:
                yield {
                    "type": "done",
                    "model": model_id,
                    "finish_reason": event.finish_reason,
                    "usage": event.usage.model_dump() if event.usage else None,
                }
    except Exception as exc:  # the client hears of any failure; a 500 is logged
        yield ws_error_message(exc)
