"""``/api/v1/models``: the catalogue, one model's description, and a direct invocation.

Why a model is unavailable (``reason``) is told to administrators only, as the health report
does: the text names the deployment's files (a GGUF's path), secrets (an API key's name) and a
failed call's error (a circuit's last error: endpoints, a provider's words). Other users read
that the model is unavailable, or recovering, and that an administrator can see why.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from textnlp.api.deps import CurrentUser, GenerationDep
from textnlp.api.disconnects import unless_gone
from textnlp.api.schemas import CompletionResponse, InvokeRequest, ModelList
from textnlp.api.serving import CompletionsServing
from textnlp.auth.service import Principal
from textnlp.domain import ModelInfo

router = APIRouter(prefix="/models", tags=["models"])
#: ``reason`` as users who are not administrators read it.
UNAVAILABLE = "unavailable here now (an administrator can see why)"
RECOVERING = "recovering from failed calls (an administrator can see why)"


def as_seen_by(info: ModelInfo, user: Principal) -> ModelInfo:
    """``info`` with its ``reason`` for administrators only (see the module's docstring)."""
    if user.is_admin or not info.reason:
        return info
    return info.model_copy(update={"reason": RECOVERING if info.available else UNAVAILABLE})


@router.get("/list", response_model=ModelList)
def list_models(user: CurrentUser, generation: GenerationDep) -> ModelList:
    """Every model of the catalogue, with whether it is available here."""
    return ModelList(data=[as_seen_by(info, user) for info in generation.models()])


# ``:path``: a catalogue id may hold a ``/`` (``org/llama3``), sent escaped or not.
@router.get("/{model_id:path}", response_model=ModelInfo)
def describe_model(model_id: str, user: CurrentUser, generation: GenerationDep) -> ModelInfo:
    """One model; 404 for an unknown id."""
    return as_seen_by(generation.model(model_id), user)


@router.post("/{model_id:path}/invoke", response_model=CompletionResponse)
async def invoke_model(
    model_id: str, body: InvokeRequest, request: Request, user: CurrentUser
) -> CompletionResponse:
    """Complete a prompt or chat messages with this model."""
    serve: CompletionsServing = request.app.state.serving
    serve.model_id(model_id)
    answer = serve.complete(model_id, serve.invoke_requests(body), owner=user.id)
    return await unless_gone(request, answer)
