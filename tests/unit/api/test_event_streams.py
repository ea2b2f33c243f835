"""A stream at shutdown (``api.event_streams``): the server stopping while a stream waits for
its next token ends it with the route's farewell (an error event), and stops the model's work
(the events' generator closed); a client gone closes it as before; without either, the events
pass through whole. A plain async generator stands in for the route's events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio

from textnlp.api.event_streams import _cancel, _until_shutdown
from textnlp.errors import ServiceUnavailable

Event = dict[str, str]


class Tokens:
    """``count`` events, then a wait for a token that never comes (a model still working)."""

    def __init__(self, count: int, *, then_wait: bool = True) -> None:
        self.count = count
        self.then_wait = then_wait
        self.closed = False
        self.waiting = asyncio.Event()

    async def events(self) -> AsyncIterator[Event]:
        try:
            for i in range(self.count):
                yield {"data": f"token {i}"}
            if self.then_wait:
                self.waiting.set()
                await asyncio.Event().wait()
        finally:
            self.closed = True


def farewell(exc: ServiceUnavailable) -> list[Event]:
    return [{"event": "error", "data": f"{exc.http_status} {exc.type}"}, {"data": "[DONE]"}]


async def test_a_shutdown_ends_the_stream_with_the_farewell_and_stops_the_work() -> None:
    tokens = Tokens(2)
    shutdown = anyio.Event()
    stream = _until_shutdown(tokens.events(), shutdown, farewell)
    got = [await anext(stream), await anext(stream)]
    reading = asyncio.ensure_future(anext(stream))
    await tokens.waiting.wait()  # the stream waits for a token the model has not made
    shutdown.set()
    got.append(await reading)
    got += [event async for event in stream]
    assert got == [
        {"data": "token 0"},
        {"data": "token 1"},
        {"event": "error", "data": "503 service_unavailable"},
        {"data": "[DONE]"},
    ]
    assert tokens.closed


async def test_a_client_gone_closes_the_events() -> None:
    tokens = Tokens(1)
    stream = _until_shutdown(tokens.events(), anyio.Event(), farewell)
    assert await anext(stream) == {"data": "token 0"}
    reading = asyncio.ensure_future(anext(stream))
    await tokens.waiting.wait()
    reading.cancel()  # as sse-starlette cancels the response when its client goes
    await asyncio.wait({reading})
    assert reading.cancelled()
    assert tokens.closed


async def test_without_a_shutdown_the_events_pass_whole() -> None:
    tokens = Tokens(3, then_wait=False)
    stream = _until_shutdown(tokens.events(), anyio.Event(), farewell)
    assert [event async for event in stream] == [{"data": f"token {i}"} for i in range(3)]
    assert tokens.closed


class SlowToClose(Tokens):
    """Events whose closing awaits (a route settling a spend): not over at the first cancel."""

    async def events(self) -> AsyncIterator[Event]:
        try:
            yield {"data": "token 0"}
            self.waiting.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)
            self.closed = True


async def test_a_client_gone_under_anyio_cancellation_waits_for_the_events_to_close() -> None:
    """sse-starlette cancels through an anyio scope, which cancels again at each await: the
    stream closed its events while their step still ran ("aclose(): asynchronous generator is
    already running", an unhandled error logged for each /v1 stream its client closed)."""
    tokens = SlowToClose(1)
    stream = _until_shutdown(tokens.events(), anyio.Event(), farewell)
    assert await anext(stream) == {"data": "token 0"}
    with anyio.move_on_after(0.1) as scope:
        await anext(stream)
    assert scope.cancelled_caught
    assert tokens.closed


async def test_a_cancel_waited_out_inside_an_anyio_scope_stays_that_scopes() -> None:
    """``_cancel`` raised a bare ``CancelledError`` of its own, which anyio took for another's:
    the cancellation escaped the scope that made it (the shutdown path)."""

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)

    task = asyncio.ensure_future(slow_to_stop())
    await asyncio.sleep(0)
    with anyio.move_on_after(0.01) as scope:
        await _cancel(task)
    assert scope.cancelled_caught and task.cancelled()
