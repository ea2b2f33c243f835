"""``GET /v1/models`` and ``GET /v1/models/{model_id}``: the catalogue in OpenAI's shape.

Every catalogue model is listed (with TextNLP's ``available`` and ``context_length``; one that
cannot run here, for want of its package, file or key, answers 400 ``model_unavailable`` when
used; one whose circuit is open, 503), and the packaged embedding model when installed.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from textnlp.api.deps import GenerationDep
from textnlp.api.openai import embedder
from textnlp.api.openai.caller import OpenAICaller
from textnlp.api.openai.schemas import ModelObject, ModelObjectList
from textnlp.domain import ModelInfo
from textnlp.errors import InvalidParameter, ModelNotFound, quoted

router = APIRouter(tags=["openai"])


def _model(info: ModelInfo) -> ModelObject:
    return ModelObject(
        id=info.id,
        owned_by=info.provider or "textnlp",
        context_length=info.context_length,
        available=info.available,
    )


def _embedding_model() -> ModelObject:
    return ModelObject(id=embedder.EMBEDDING_MODEL, owned_by="sentence-transformers")


def refuse_embedding_model(model: str) -> None:
    if model == embedder.EMBEDDING_MODEL:
        raise InvalidParameter(
            f"{model} is an embedding model: use /v1/embeddings", parameter="model"
        )


@router.get("/models", response_model=ModelObjectList)
def list_models(caller: OpenAICaller, generation: GenerationDep) -> JSONResponse:
    """The models this server answers with."""
    data = [_model(info) for info in generation.models()]
    if embedder.installed():
        data.append(_embedding_model())
    return JSONResponse(ModelObjectList(data=data).model_dump(), headers=caller.headers)


@router.get("/models/{model_id:path}", response_model=ModelObject)
def get_model(model_id: str, caller: OpenAICaller, generation: GenerationDep) -> JSONResponse:
    """One model; 404 ``model_not_found`` for an unknown id."""
    if model_id == embedder.EMBEDDING_MODEL:
        if not embedder.installed():
            raise ModelNotFound(f"model {quoted(model_id)} is not installed here", model=model_id)
        found = _embedding_model()
    else:
        found = _model(generation.model(model_id))
    return JSONResponse(found.model_dump(), headers=caller.headers)
