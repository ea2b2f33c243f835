"""Server-Sent Events responses (sse-starlette's ``EventSourceResponse``) that end with an error
event, never quietly, when the server shuts down.

On SIGTERM sse-starlette alone cancels each open stream and closes its body cleanly, so a
client read a stream cut mid-answer as a whole one (no error, no final chunk). Here the
shutdown instead stops the stream's model work (its generator closed, as when the client
leaves) and sends ``farewell``: the route's own error event for a 503 ``service_unavailable``
(``ServiceUnavailable``, dependency ``server``), and ``[DONE]`` where the route ends with it.
A WebSocket is closed with 1012 (service restart) by uvicorn in the same shutdown; a whole
(non-streaming) answer is let finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
from sse_starlette import EventSourceResponse

from textnlp.errors import ServiceUnavailable

#: Seconds a stream has, once shutdown is seen, to send its error event and free the model
#: before sse-starlette cancels it: the bound a stream puts on the server's shutdown.
SHUTDOWN_GRACE_S = 5.0

Event = dict[str, str]
#: The events that end a stream cut by the shutdown, given the error to tell.
Farewell = Callable[[ServiceUnavailable], Sequence[Event]]

_END: Any = object()
log = logging.getLogger("textnlp.api")


def shutting_down() -> ServiceUnavailable:
    return ServiceUnavailable("the server is shutting down", dependency="server")


def event_stream(
    events: AsyncIterator[Event], farewell: Farewell, **options: Any
) -> EventSourceResponse:
    """``EventSourceResponse(events, **options)``, ended by ``farewell`` at shutdown."""
    shutdown = anyio.Event()
    return EventSourceResponse(
        _until_shutdown(events, shutdown, farewell),
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_S,
        **options,
    )


async def _until_shutdown(
    events: AsyncIterator[Event], shutdown: anyio.Event, farewell: Farewell
) -> AsyncIterator[Event]:
    """``events`` until they end or ``shutdown`` is set. Each next event is awaited in a task
    of its own, so that the shutdown can cancel it (which closes ``events``: their ``finally``
    frees the model's slot) while the stream waits for a token."""
    stop = asyncio.ensure_future(shutdown.wait())
    try:
        while True:
            step = asyncio.ensure_future(_next(events))
            try:
                await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # cancelled: the client went away
                await _cancel(step)
                raise
            if not step.done():  # the server is stopping
                step.cancel()
                log.info("stream ended by the server's shutdown")
                for event in farewell(shutting_down()):
                    yield event
                await _cancel(step)  # the model's work stopped before the body ends
                return
            event = step.result()
            if event is _END:
                return
            yield event
    finally:
        stop.cancel()
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


async def _next(events: AsyncIterator[Event]) -> Any:
    return await anext(events, _END)


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for its end (not for its result: a cancelled stream has none).

    The wait outlasts cancellations of its own: sse-starlette cancels a stream through an anyio
    scope, which cancels again at each await, and the events must not be closed while their
    step still runs them (their ``finally`` may await, as a settling spend does)."""
    task.cancel()
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc  # anyio knows its own by the message: raised as is
    if not task.cancelled():
        task.exception()  # retrieved: what a stream raised as it was cut is not news
    if cancelled is not None:
        raise cancelled
