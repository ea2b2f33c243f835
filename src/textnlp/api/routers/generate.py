"""``/api/v1/generate``: text completions (JSON or Server-Sent Events).

Batch jobs (``POST batch``, ``GET status/{job_id}``) are in ``textnlp.api.routers.jobs``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from textnlp.api.deps import CurrentUser
from textnlp.api.errors import sse_error
from textnlp.api.schemas import CompletionResponse, GenerateTextRequest
from textnlp.api.serving import CompletionsServing, completion_id
from textnlp.domain import GenerationRequest

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
        return await serve.complete(model_id, requests, owner=user.id)
    await serve.admit(user.id, model_id)  # a spending cap answers as an error, not mid-stream
    await serve.service.load(model_id)  # load errors answer as errors, not mid-stream
    # sse-starlette: the wire format, keep-alive pings, and the generator cancelled when the
    # client goes away; "\n" separators, as OpenAI's streams have them.
    return EventSourceResponse(_sse(serve, model_id, requests[0], user.id), sep="\n")


async def _sse(
    serve: CompletionsServing, model_id: str, request: GenerationRequest, owner: str
) -> AsyncIterator[dict[str, str]]:
    """The stream's events, as sse-starlette takes them (``data``, and ``event`` for errors)."""
    chunk_id = completion_id()
    try:
        async for event in serve.stream(model_id, request, owner):
            chunk: dict[str, Any] = {
                "id": chunk_id,
                "object": "text_completion",
                "model": model_id,
                "choices": [{"index": 0, "text": event.text, "finish_reason": event.finish_reason}],
            }
            if event.usage is not None:
                chunk["usage"] = event.usage.model_dump()
            yield {"data": json.dumps(chunk)}
    except Exception as exc:  # the client hears of any failure; a 500 is logged
        yield sse_error(exc)
    yield {"data": "[DONE]"}
