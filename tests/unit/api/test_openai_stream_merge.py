"""Merging a stream per choice (``api.openai.streaming._merged``): interleaved as they come,
the first failure stops them all, and a client gone early closes every stream (frees its
model slot). Plain async generators stand in for the model's streams: the merge is ours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from textnlp.api.openai.streaming import _merged
from textnlp.api.serving import StreamEvent


class Stream:
    def __init__(self, texts: list[str], *, fail_after: int | None = None) -> None:
        self.texts = texts
        self.fail_after = fail_after
        self.closed = False

    async def events(self) -> AsyncIterator[StreamEvent]:
        try:
            for i, text in enumerate(self.texts):
                if i == self.fail_after:
                    raise RuntimeError("the backend went away")
                await asyncio.sleep(0.001)
                yield StreamEvent(text)
        finally:
            self.closed = True


async def merged(streams: list[Stream]) -> AsyncIterator[tuple[int, StreamEvent]]:
    """As ``stream_response`` calls it: each stream's first event already taken."""
    iterators = [s.events() for s in streams]
    firsts = [await anext(it, None) for it in iterators]
    return _merged(firsts, iterators)


async def test_every_event_once_with_its_index_in_each_streams_order() -> None:
    streams = [Stream(["a", "b", "c"]), Stream(["x", "y"]), Stream([])]
    events = await merged(streams)
    seen = [(i, e.text) async for i, e in events]
    assert sorted(seen) == [(0, "a"), (0, "b"), (0, "c"), (1, "x"), (1, "y")]
    assert [t for i, t in seen if i == 0] == ["a", "b", "c"]
    assert all(s.closed for s in streams)


async def test_a_failure_stops_and_closes_every_stream() -> None:
    streams = [Stream(["a"] * 50), Stream(["x", "y", "z"], fail_after=2)]
    events = await merged(streams)
    with pytest.raises(RuntimeError, match="went away"):
        async for _ in events:
            pass
    assert all(s.closed for s in streams)


async def test_closing_early_closes_every_stream() -> None:
    for count in (1, 3):  # one stream takes a path of its own
        streams = [Stream(["a"] * 50) for _ in range(count)]
        events = await merged(streams)
        await anext(events)
        await events.aclose()  # type: ignore[attr-defined]
        assert all(s.closed for s in streams), count
