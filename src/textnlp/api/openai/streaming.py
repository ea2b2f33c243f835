"""OpenAI's Server-Sent Events streams: chunks as ``data: {...}``, then ``data: [DONE]``.

One stream per choice (``n`` choices of each prompt, in OpenAI's order), merged as their
tokens come; each chunk names its choice's ``index``. Every stream's first event is awaited
before the response starts, so what fails before any token (the context window, a backend's
refusal, an outage) answers as an HTTP error with its status, not as a 200 whose body is an
error. A failure after that arrives as ``data: {"error": {...}}`` (what the ``openai`` SDK
raises as ``APIError``), then ``[DONE]``; so does a credential gone while the stream runs (a
revoked key: ``deps.CredentialWatch``), and a server shutting down (a 503: ``event_streams``;
the model's work is stopped). Spending caps are checked and the model loaded
before, as on the native stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sse_starlette import EventSourceResponse

from textnlp.api.deps import CredentialWatch
from textnlp.api.errors import openai_error_for, openai_sse_error
from textnlp.api.event_streams import event_stream
from textnlp.api.openai.translate import ChunkWriter
from textnlp.api.schemas import CompletionResponse, CompletionUsage
from textnlp.api.serving import CompletionsServing, StreamEvent
from textnlp.domain import GenerationRequest
from textnlp.errors import ServiceUnavailable

Indexed = tuple[int, StreamEvent]


async def stream_response(
    serve: CompletionsServing,
    model_id: str,
    requests: Sequence[GenerationRequest],
    owner: str,
    writer: ChunkWriter,
    headers: dict[str, str],
    watch: CredentialWatch | None = None,
    *,
    prompts: int = 1,
) -> EventSourceResponse:
    """``requests``: the choices of ``prompts`` prompts, in order."""
    await serve.admit(owner, model_id, requests)
    await serve.service.load(model_id)
    streams = [serve.stream(model_id, request, owner) for request in requests]
    try:  # every first event awaited (none left running), then the first failure raised
        results = await asyncio.gather(*(_first(s) for s in streams), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure
    except BaseException:
        await asyncio.gather(*(_close(stream) for stream in streams), return_exceptions=True)
        raise
    firsts = [r for r in results if not isinstance(r, BaseException)]
    events = _merged(firsts, streams)
    groups = serve.prompt_groups(len(requests), prompts)
    return event_stream(
        _sse(writer, len(streams), events, watch, groups), _farewell, sep="\n", headers=headers
    )


def buffered_response(
    response: CompletionResponse, writer: ChunkWriter, headers: dict[str, str]
) -> EventSourceResponse:
    """A finished answer as one content chunk per choice (a checked JSON answer)."""

    async def events() -> AsyncIterator[Indexed]:
        last = len(response.choices) - 1
        for i, choice in enumerate(response.choices):
            usage = response.usage if i == last else None
            yield i, StreamEvent(choice.text, choice.finish_reason, usage)

    return event_stream(
        _sse(writer, len(response.choices), events()), _farewell, sep="\n", headers=headers
    )


async def _sse(
    writer: ChunkWriter,
    choices: int,
    events: AsyncIterator[Indexed],
    watch: CredentialWatch | None = None,
    groups: Sequence[int] | None = None,
) -> AsyncIterator[dict[str, str]]:
    try:
        for index in range(choices):
            start = writer.start(index)
            if start is not None:
                yield _data(start)
        usages: dict[int, CompletionUsage] = {}
        try:
            async for index, event in events:
                if event.text or event.finish_reason is not None:
                    yield _data(writer.text(index, event.text, event.finish_reason))
                if watch is not None:
                    await watch.check()  # AuthError: an error chunk ends the stream
                if event.usage is not None:
                    usages[index] = event.usage
            usage = writer.usage(_total(usages, groups))
            if usage is not None:
                yield _data(usage)
        except Exception as exc:  # the client hears of any failure; a 500 is logged
            yield openai_sse_error(exc)
    finally:  # a client gone mid-stream frees the models' slots now
        await _close(events)
    yield {"data": "[DONE]"}


async def _merged(
    firsts: Sequence[StreamEvent | None], streams: Sequence[AsyncIterator[StreamEvent]]
) -> AsyncIterator[Indexed]:
    """The streams' events as they come, each with its stream's index; the first failure
    stops them all, and closing this closes every stream (freeing the models' slots)."""
    pumps: list[asyncio.Task[None]] = []
    try:
        for index, first in enumerate(firsts):
            if first is not None:
                yield index, first
        if len(streams) == 1:  # the common case, without a task
            if firsts[0] is not None:
                async for event in streams[0]:
                    yield 0, event
            return
        queue: asyncio.Queue[tuple[int, StreamEvent | None, Exception | None]] = asyncio.Queue()

        async def pump(index: int, stream: AsyncIterator[StreamEvent]) -> None:
            try:
                async for event in stream:
                    await queue.put((index, event, None))
            except Exception as exc:
                await queue.put((index, None, exc))
            else:
                await queue.put((index, None, None))

        pumps = [
            asyncio.create_task(pump(i, stream))
            for i, stream in enumerate(streams)
            if firsts[i] is not None
        ]
        for _ in pumps:  # one end (or failure) per stream
            while True:
                index, next_event, error = await queue.get()
                if error is not None:
                    raise error
                if next_event is None:
                    break
                yield index, next_event
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await asyncio.gather(*(_close(stream) for stream in streams), return_exceptions=True)


def _total(
    usages: dict[int, CompletionUsage], groups: Sequence[int] | None
) -> CompletionUsage | None:
    """The usages of the streams by index; each prompt's tokens counted once (``groups``)."""
    if not usages:
        return None
    prompts: dict[int, int] = {}
    for index, usage in sorted(usages.items()):
        prompts.setdefault(index if groups is None else groups[index], usage.prompt_tokens)
    prompt = sum(prompts.values())
    completion = sum(u.completion_tokens for u in usages.values())
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


async def _first(stream: AsyncIterator[StreamEvent]) -> StreamEvent | None:
    return await anext(stream, None)


async def _close(events: AsyncIterator[Any]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _farewell(exc: ServiceUnavailable) -> list[dict[str, str]]:
    """A shutdown's error chunk: as ``openai_sse_error`` renders it, without its error log
    (``event_streams`` logs the shutdown)."""
    return [_data({"error": openai_error_for(exc)[1]}), {"data": "[DONE]"}]


def _data(chunk: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(chunk, ensure_ascii=False)}
