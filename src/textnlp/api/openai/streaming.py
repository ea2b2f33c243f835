"""OpenAI's Server-Sent Events streams: chunks as ``data: {...}``, then ``data: [DONE]``.

The stream's first event is awaited before the response starts, so what fails before any
token (the context window, a backend's refusal, an outage) answers as an HTTP error with its
status, not as a 200 whose body is an error. A failure after that arrives as
``data: {"error": {...}}`` (what the ``openai`` SDK raises as ``APIError``), then ``[DONE]``.
Spending caps are checked and the model loaded before, as on the native stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse

from textnlp.api.errors import openai_sse_error
from textnlp.api.openai.translate import ChunkWriter
from textnlp.api.schemas import CompletionResponse
from textnlp.api.serving import CompletionsServing, StreamEvent
from textnlp.domain import GenerationRequest


async def stream_response(
    serve: CompletionsServing,
    model_id: str,
    request: GenerationRequest,
    owner: str,
    writer: ChunkWriter,
    headers: dict[str, str],
) -> EventSourceResponse:
    await serve.admit(owner, model_id)
    await serve.service.load(model_id)
    events = serve.stream(model_id, request, owner)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await _close(events)
        raise
    return EventSourceResponse(_sse(writer, first, events), sep="\n", headers=headers)


def buffered_response(
    response: CompletionResponse, writer: ChunkWriter, headers: dict[str, str]
) -> EventSourceResponse:
    """A finished answer as a stream of one content chunk (a checked JSON answer)."""
    choice = response.choices[0]
    done = StreamEvent(choice.text, choice.finish_reason, response.usage)

    async def no_more() -> AsyncIterator[StreamEvent]:
        return
        yield  # an empty async generator

    return EventSourceResponse(_sse(writer, done, no_more()), sep="\n", headers=headers)


async def _sse(
    writer: ChunkWriter, first: StreamEvent | None, events: AsyncIterator[StreamEvent]
) -> AsyncIterator[dict[str, str]]:
    try:
        start = writer.start()
        if start is not None:
            yield _data(start)
        try:
            event = first
            while event is not None:
                if event.text or event.finish_reason is not None:
                    yield _data(writer.text(event.text, event.finish_reason))
                usage = writer.usage(event.usage)
                if usage is not None:
                    yield _data(usage)
                event = await anext(events, None)
        except Exception as exc:  # the client hears of any failure; a 500 is logged
            yield openai_sse_error(exc)
    finally:  # a client gone mid-stream frees the model's slot now
        await _close(events)
    yield {"data": "[DONE]"}


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _data(chunk: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(chunk, ensure_ascii=False)}
