"""``POST /v1/completions``: OpenAI's (legacy) text completions of raw prompts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from textnlp.api.disconnects import unless_gone
from textnlp.api.openai.caller import OpenAICaller, ServingDep
from textnlp.api.openai.chat import SSE_DOC
from textnlp.api.openai.models import refuse_embedding_model
from textnlp.api.openai.schemas import TextCompletion
from textnlp.api.openai.streaming import stream_response
from textnlp.api.openai.translate import ChunkWriter, completion_requests, text_completion
from textnlp.services.openai_requests import CompletionRequest, refuse_unsupported

router = APIRouter(tags=["openai"])


@router.post("/completions", response_model=TextCompletion, responses=SSE_DOC)
async def completions(
    body: CompletionRequest, request: Request, caller: OpenAICaller, serve: ServingDep
) -> JSONResponse | EventSourceResponse:
    """Complete one prompt or a list of them (``n`` choices each); no chat template."""
    refuse_embedding_model(body.model)
    refuse_unsupported(body)
    model_id = serve.model_id(body.model)
    requests = completion_requests(serve, body, model_id)
    prompts = 1 if isinstance(body.prompt, str) else len(body.prompt)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        writer = ChunkWriter(model_id, chat=False, include_usage=include_usage)
        return await stream_response(
            serve,
            model_id,
            requests,
            caller.owner,
            writer,
            caller.headers,
            caller.watch,
            prompts=prompts,
        )
    answer = await unless_gone(
        request, serve.complete(model_id, requests, owner=caller.owner, prompts=prompts)
    )
    return JSONResponse(text_completion(answer).model_dump(), headers=caller.headers)
