"""``POST /v1/chat/completions``: chat messages through the model's chat template."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from textnlp.api.disconnects import unless_gone
from textnlp.api.openai.caller import OpenAICaller, ServingDep
from textnlp.api.openai.models import refuse_embedding_model
from textnlp.api.openai.schemas import ChatCompletion
from textnlp.api.openai.streaming import buffered_response, stream_response
from textnlp.api.openai.structured import complete_json, instructed, json_format
from textnlp.api.openai.translate import ChunkWriter, chat_completion, chat_requests
from textnlp.services.openai_requests import (
    ChatCompletionRequest,
    chat_messages,
    refuse_unsupported,
)

router = APIRouter(tags=["openai"])

SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer, or with `stream: true` Server-Sent Events of chunks, "
        "ending with `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.post("/chat/completions", response_model=ChatCompletion, responses=SSE_DOC)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, caller: OpenAICaller, serve: ServingDep
) -> JSONResponse | EventSourceResponse:
    """OpenAI's chat completions (``response_format``: see ``api.openai.structured``)."""
    refuse_embedding_model(body.model)
    refuse_unsupported(body)
    model_id = serve.model_id(body.model)
    fmt = json_format(body)
    messages = chat_messages(body.messages)
    if fmt is not None:
        messages = instructed(messages, fmt)
    requests = chat_requests(serve, body, model_id, messages)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    writer = ChunkWriter(model_id, chat=True, include_usage=include_usage)
    if fmt is not None:
        answer = await unless_gone(
            request, complete_json(serve, model_id, requests, fmt, caller.owner)
        )
        if body.stream:
            return buffered_response(answer, writer, caller.headers)
    elif body.stream:
        return await stream_response(
            serve, model_id, requests, caller.owner, writer, caller.headers, caller.watch
        )
    else:
        answer = await unless_gone(request, serve.complete(model_id, requests, owner=caller.owner))
    return JSONResponse(chat_completion(answer).model_dump(), headers=caller.headers)
