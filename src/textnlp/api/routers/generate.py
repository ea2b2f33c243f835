"""``/api/v1/generate``: text completions (JSON or Server-Sent Events).

Batch jobs (``POST batch``, ``GET status/{job_id}``) are in ``textnlp.api.routers.jobs``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from textnlp.api.deps import CredentialWatch, CurrentUser, credential_of
from textnlp.api.disconnects import unless_gone
from textnlp.api.errors import sse_error
from textnlp.api.event_streams import event_stream
from textnlp.api.schemas import CompletionResponse, GenerateTextRequest
from textnlp.api.serving import CompletionsServing, StreamEvent, completion_id

router = APIRouter(prefix="/generate", tags=["generate"])

_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A completion, or with `stream: true` Server-Sent Events of chunks in "
        "the same shape, ending with `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def serving(request: Request) -> CompletionsServing:
    value: CompletionsServing = request.app.state.serving
    return value


@router.post("/text", response_model=CompletionResponse, responses=_SSE_DOC)
async def generate_text(
    body: GenerateTextRequest, request: Request, user: CurrentUser
) -> CompletionResponse | EventSourceResponse:
    """Complete a prompt, or a template with variables, with a catalogue model."""
    serve = serving(request)
    model_id = serve.model_id(body.model)
    requests = serve.requests_for(body)
    if not body.stream:
        return await unless_gone(request, serve.complete(model_id, requests, owner=user.id))
    # A spending cap answers as an error, not mid-stream.
    await serve.admit(user.id, model_id, requests[:1])
    await serve.service.load(model_id)  # load errors answer as errors, not mid-stream
    # The first event is awaited before the response starts: what fails before any token (the
    # context window, a backend's refusal) answers with its status, not as a 200.
    events = serve.stream(model_id, requests[0], user.id)
    try:
        first = await anext(events, None)
    except BaseException:
        await events.aclose()
        raise
    # sse-starlette: the wire format, keep-alive pings, and the generator cancelled when the
    # client goes away; "\n" separators, as OpenAI's streams have them. A server shutting
    # down ends it with an error event (``event_streams``), not as if it were whole.
    # A stream does not outlive its credential (a logout, a revoked key, a disabled user).
    watch = CredentialWatch.of(request, credential_of(request))
    return event_stream(_sse(model_id, first, events, watch), _farewell, sep="\n")


def _farewell(exc: Exception) -> list[dict[str, str]]:
    return [sse_error(exc), {"data": "[DONE]"}]


async def _sse(
    model_id: str,
    first: StreamEvent | None,
    events: AsyncGenerator[StreamEvent, None],
    watch: CredentialWatch,
) -> AsyncIterator[dict[str, str]]:
    """The stream's events, as sse-starlette takes them (``data``, and ``event`` for errors)."""
    chunk_id = completion_id()
    created = int(time.time())  # as the completion's
    try:
        event = first
        while event is not None:
            chunk: dict[str, Any] = {
                "id": chunk_id,
                "object": "text_completion",
                "created": created,
                "model": model_id,
                "choices": [{"index": 0, "text": event.text, "finish_reason": event.finish_reason}],
            }
            if event.usage is not None:
                chunk["usage"] = event.usage.model_dump()
            yield {"data": json.dumps(chunk)}
            await watch.check()  # AuthError: an error event ends the stream
            event = await anext(events, None)
    except Exception as exc:  # the client hears of any failure; a 500 is logged
        yield sse_error(exc)
    finally:  # a client gone mid-stream frees the model's slot now
        await events.aclose()
    yield {"data": "[DONE]"}
