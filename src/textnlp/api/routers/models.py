"""``/api/v1/models``: the catalogue, one model's description, and a direct invocation."""

from __future__ import annotations

from fastapi import APIRouter, Request

from textnlp.api.deps import CurrentUser, GenerationDep
from textnlp.api.disconnects import unless_gone
from textnlp.api.schemas import CompletionResponse, InvokeRequest, ModelList
from textnlp.api.serving import CompletionsServing
from textnlp.domain import ModelInfo

router = APIRouter(prefix="/models", tags=["models"])


@router.get("/list", response_model=ModelList)
def list_models(user: CurrentUser, generation: GenerationDep) -> ModelList:
    """Every model of the catalogue, with whether it is available here."""
    return ModelList(data=generation.models())


# ``:path``: a catalogue id may hold a ``/`` (``org/llama3``), sent escaped or not.
@router.get("/{model_id:path}", response_model=ModelInfo)
def describe_model(model_id: str, user: CurrentUser, generation: GenerationDep) -> ModelInfo:
    """One model; 404 for an unknown id."""
    return generation.model(model_id)


@router.post("/{model_id:path}/invoke", response_model=CompletionResponse)
async def invoke_model(
    model_id: str, body: InvokeRequest, request: Request, user: CurrentUser
) -> CompletionResponse:
    """Complete a prompt or chat messages with this model."""
    serve: CompletionsServing = request.app.state.serving
    serve.model_id(model_id)
    answer = serve.complete(model_id, serve.invoke_requests(body), owner=user.id)
    return await unless_gone(request, answer)
