"""OpenAI's response bodies, as far as TextNLP serves them (the requests it takes, online and
in batch files alike: ``services.openai_requests``)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatMessageOut(_Response):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class ChatChoice(_Response):
    index: int
    message: ChatMessageOut
    logprobs: None = None
    finish_reason: str | None


def _now() -> int:
    return int(time.time())


class ChatCompletion(_Response):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    system_fingerprint: str | None = None
    choices: list[ChatChoice]
    usage: Usage


class TextChoice(_Response):
    index: int
    text: str
    logprobs: None = None
    finish_reason: str | None


class TextCompletion(_Response):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    system_fingerprint: str | None = None
    choices: list[TextChoice]
    usage: Usage


class ModelObject(_Response):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str
    #: TextNLP's additions: the model's context and whether it can serve here now.
    context_length: int | None = None
    available: bool = True


class ModelObjectList(_Response):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class Embedding(_Response):
    object: Literal["embedding"] = "embedding"
    index: int
    #: Floats, or with ``encoding_format: base64`` the little-endian float32 bytes in base64.
    embedding: list[float] | str


class EmbeddingUsage(_Response):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(_Response):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class OpenAIErrorDetail(_Response):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(_Response):
    error: OpenAIErrorDetail


#: The error answers of the /v1 routes, documented in the OpenAPI schema.
OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorResponse, "description": description}
    for status, description in {
        400: "Invalid request: malformed JSON, wrong types, out-of-range or unsupported values.",
        401: "Missing, invalid, expired or revoked credentials.",
        403: "Authenticated, but not allowed.",
        404: "Unknown model, file or batch.",
        408: "The request body did not arrive in time (`api.body_timeout_s`).",
        413: "Request body too large.",
        429: "Rate limit exceeded (see Retry-After and x-ratelimit-*), or spending cap reached.",
        500: "Internal error.",
        501: "A feature whose optional extra is not installed here (e.g. `validation`).",
        502: "A model backend failed, or gave no valid JSON for `response_format`.",
        503: "A model backend or component is unavailable, or the server is at its limit of "
        "requests in progress (see Retry-After).",
        504: "A model backend did not answer in time.",
    }.items()
}
