"""``POST /api/v1/stream``: the integration of the API Gateway WebSocket API (the design's
"API Gateway (WS) for streaming").

API Gateway holds the client's WebSocket and POSTs each of its events here, naming the
connection (``X-Connection-Id``) and the route (``X-Route-Key``):

- ``$connect``: the Lambda authorizer has let the connection in; the app still checks the
  credential itself (``X-Access-Token``, mapped from ``?access_token=``), as on every route,
  and remembers whose connection it is (``AuthService.hold``: the token's claims or the key's
  id, in the shared key-value store: Redis in ``aws``, so any API task can serve the
  connection's frames) for API Gateway's 2-hour connection limit;
- ``$default``: the frame is a stream request, as on the app's own WebSocket
  (``/api/v1/generate/stream``). Its credential is checked again (``AuthService.recheck``): a
  logout, an expired token, a revoked key or a disabled user closes the connection with an
  error event. The answer is 202 at once; the generation runs in this task and each event
  (``token``..., then ``done``, or one ``error``) is posted back to the connection through the
  API Gateway Management API, in the same shapes as the direct socket;
- ``$disconnect``: the connection's generation is cancelled and the connection forgotten. A
  connection that is gone when an event is posted (``GoneException``) cancels its generation
  too, which covers a ``$disconnect`` that reached another task.

Only the WebSocket API can call this route: the load balancer forwards nothing without the
gateway's origin header, and the route refuses a request without ``X-WebSocket-Origin``
(``deployment.WEBSOCKET_ORIGIN_HEADER``), which only the WebSocket API's integration sends with
the deployment's secret; the REST API forwards a client's own headers (a forged
``X-Connection-Id`` and ``X-Route-Key`` would otherwise act on another user's connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from textnlp.api.deps import CredentialWatch, authenticate_async, enforce_rate_limit
from textnlp.api.errors import ws_error_message
from textnlp.api.routers.stream import stream_events
from textnlp.api.serving import CompletionsServing
from textnlp.deployment import GATEWAY_STREAM_PATH, WEBSOCKET_ORIGIN_HEADER
from textnlp.errors import AuthError, ConfigError, Conflict, NotFound, PermissionDenied

if TYPE_CHECKING:
    from textnlp.bootstrap import Platform

router = APIRouter(tags=["generate"])
log = logging.getLogger("textnlp.api")

#: API Gateway closes a WebSocket connection after 2 hours at most.
CONNECTION_TTL_S = 2 * 3600
_KEY = "ws-connection:"


class GatewayStreams:
    """The gateway's connections: who owns each, and the generation running on it."""

    def __init__(self, platform: Platform, serving: CompletionsServing) -> None:
        self._platform = platform
        self._serving = serving
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._client: Any = None

    @property
    def _store(self) -> Any:
        return self._platform.kv_cache

    def remember(self, connection_id: str, held: dict[str, Any]) -> None:
        """Keep what ``AuthService.hold`` keeps of the connection's caller."""
        self._store.set(_KEY + connection_id, json.dumps(held).encode(), CONNECTION_TTL_S)

    def owner(self, connection_id: str) -> dict[str, Any] | None:
        raw = self._store.get(_KEY + connection_id)
        return None if raw is None else dict(json.loads(raw))

    def start(self, connection_id: str, raw: str, held: dict[str, Any]) -> bool:
        """Run the request in the background; False when the connection is busy. ``held``:
        the caller, as ``AuthService.hold`` keeps it (checked again while it streams)."""
        running = self._tasks.get(connection_id)
        if running is not None and not running.done():
            return False
        task = asyncio.create_task(self._run(connection_id, raw, held))
        self._tasks[connection_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(connection_id, None))
        return True

    async def _run(self, connection_id: str, raw: str, held: dict[str, Any]) -> None:
        auth = self._platform.auth
        watch = CredentialWatch(lambda: run_in_threadpool(auth.recheck, held))
        events = stream_events(self._serving, raw, str(held["user_id"]))
        try:
            async for event in events:
                if not await self.post(connection_id, event):
                    log.info("gateway connection %s is gone: generation cancelled", connection_id)
                    return
                await watch.check()
        except AuthError as exc:  # the credential went mid-stream: told why, and closed
            await events.aclose()  # the generation stops, freeing its slot
            await self.refuse(connection_id, exc)
        except Exception as exc:  # the client must hear of it, and the task must not die silently
            log.warning("gateway stream on %s failed", connection_id)
            await self.post(connection_id, ws_error_message(exc))  # logs the traceback
        finally:
            await events.aclose()

    async def post(self, connection_id: str, event: dict[str, Any]) -> bool:
        """Post one event to the connection; False when the connection is gone."""
        client = self._management()
        data = json.dumps(event, default=str).encode()
        try:
            await asyncio.to_thread(
                client.post_to_connection, ConnectionId=connection_id, Data=data
            )
        except client.exceptions.GoneException:
            await asyncio.to_thread(self.forget, connection_id)
            return False
        return True

    def forget(self, connection_id: str) -> None:
        self._store.delete(_KEY + connection_id)

    async def refuse(self, connection_id: str, error: Exception) -> None:
        """Tell the connection why, then close it (its caller's credential no longer stands)."""
        if await self.post(connection_id, ws_error_message(error)):
            client = self._management()
            with contextlib.suppress(client.exceptions.GoneException):  # it left meanwhile
                await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
        await self.disconnect(connection_id)

    async def disconnect(self, connection_id: str) -> None:
        task = self._tasks.pop(connection_id, None)
        if task is not None and task is not asyncio.current_task():  # a stream refusing itself
            task.cancel()
        await asyncio.to_thread(self.forget, connection_id)

    def _management(self) -> Any:
        if self._client is None:
            settings = self._platform.settings
            if not settings.api.websocket_callback_url:
                raise ConfigError("api.websocket_callback_url is not set")
            import boto3

            self._client = boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=settings.api.websocket_callback_url,
                region_name=settings.aws.region,
            )
        return self._client

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


RouteKey = Literal["$connect", "$disconnect", "$default"]


@router.post(
    GATEWAY_STREAM_PATH.removeprefix("/api/v1"),
    status_code=202,
    responses={
        200: {"description": "`$connect` accepted, or `$disconnect` done."},
        202: {"description": "A frame accepted: its events are posted to the connection."},
        403: {"description": "Not called by the WebSocket API (no `X-WebSocket-Origin`)."},
        404: {"description": "This server has no API Gateway (`api.websocket_callback_url`)."},
    },
)
async def gateway_stream(
    request: Request,
    connection_id: Annotated[
        str, Header(alias="X-Connection-Id", min_length=1, max_length=128, pattern=r"^[\w=+/-]+$")
    ],
    route_key: Annotated[RouteKey, Header(alias="X-Route-Key")],
    access_token: Annotated[str | None, Header(alias="X-Access-Token", max_length=4096)] = None,
    websocket_origin: Annotated[
        str | None, Header(alias=WEBSOCKET_ORIGIN_HEADER, max_length=4096)
    ] = None,
) -> Response:
    """One event of an API Gateway WebSocket connection (called by API Gateway only)."""
    settings = request.app.state.platform.settings.api
    secret = settings.origin_verify.get_secret_value()
    if not settings.websocket_callback_url or not secret:
        # No gateway to post events back to: a server without one does not serve the route.
        raise NotFound(
            "no API Gateway WebSocket API here (api.websocket_callback_url and "
            "api.origin_verify are both needed)"
        )
    if not hmac.compare_digest((websocket_origin or "").encode(), secret.encode()):
        raise PermissionDenied("only the API Gateway WebSocket API calls this route")
    streams: GatewayStreams = request.app.state.gateway_streams
    auth = request.app.state.auth
    if route_key == "$connect":
        principal = await authenticate_async(request, access_token)
        await run_in_threadpool(streams.remember, connection_id, auth.hold(principal))
        return Response(status_code=200)
    if route_key == "$disconnect":
        await streams.disconnect(connection_id)
        return Response(status_code=200)
    held = await asyncio.to_thread(streams.owner, connection_id)
    if held is None:
        raise AuthError("unknown or expired connection: connect again")
    # Every frame is a request, checked as an HTTP request is: its credential again, and a
    # token from its owner's bucket.
    try:
        principal = await run_in_threadpool(auth.recheck, held)
    except AuthError as exc:
        await streams.refuse(connection_id, exc)
        raise
    await run_in_threadpool(
        enforce_rate_limit, request.app.state, principal.bucket, principal.username
    )
    raw = (await request.body()).decode("utf-8", errors="replace")
    if not streams.start(connection_id, raw, held):
        busy = Conflict("one request at a time on a connection")
        await streams.post(connection_id, ws_error_message(busy))
    return Response(status_code=202)
