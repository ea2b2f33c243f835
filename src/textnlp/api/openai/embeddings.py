"""``POST /v1/embeddings``: sentence embeddings (see ``api.openai.embedder``).

Not cached (the model is deterministic and cheap, and the response cache keys completions)
and not priced (it runs here); requests are counted in the API's metrics as every route is.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from textnlp.api.openai import embedder
from textnlp.api.openai.caller import OpenAICaller, ServingDep
from textnlp.api.openai.schemas import Embedding, EmbeddingList, EmbeddingUsage
from textnlp.errors import InvalidParameter, ModelNotFound
from textnlp.services.openai_requests import MAX_EMBEDDING_INPUTS, EmbeddingRequest

router = APIRouter(tags=["openai"])


@router.post("/embeddings", response_model=EmbeddingList)
async def embeddings(
    body: EmbeddingRequest, caller: OpenAICaller, serve: ServingDep
) -> JSONResponse:
    """Unit-length vectors of ``input`` (a text or a list), floats or base64."""
    if body.model != embedder.EMBEDDING_MODEL:
        serve.service.spec(body.model)  # unknown -> 404 model_not_found
        raise InvalidParameter(f"{body.model} is not an embedding model", parameter="model")
    if not embedder.installed():
        raise ModelNotFound(f"model {body.model!r} is not installed here", model=body.model)
    embedder.check_dimensions(body.dimensions)
    texts = [body.input] if isinstance(body.input, str) else body.input
    _check_texts(texts, serve.bounds.max_prompt_chars)
    vectors, tokens = await embedder.embed(texts)
    answer = EmbeddingList(
        data=[
            Embedding(index=i, embedding=embedder.encoded(vector, body.encoding_format))
            for i, vector in enumerate(vectors)
        ],
        model=embedder.EMBEDDING_MODEL,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
    return JSONResponse(answer.model_dump(), headers=caller.headers)


def _check_texts(texts: list[str], max_chars: int) -> None:
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidParameter(
            f"input holds at most {MAX_EMBEDDING_INPUTS} texts", parameter="input"
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidParameter(f"input[{i}] is empty", parameter="input")
        if len(text) > max_chars:
            raise InvalidParameter(f"input[{i}] is over {max_chars} characters", parameter="input")
