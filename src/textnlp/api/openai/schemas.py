"""OpenAI's request and response bodies, as far as TextNLP serves them.

**Unknown fields are ignored**, as OpenAI-compatible servers (vLLM, llama.cpp's) do: clients
such as LangChain and LiteLLM send fields that only some servers know (``user``, ``store``,
``metadata``, ``service_tier``, ``parallel_tool_calls``...), and refusing them would break a
client that works unchanged elsewhere. Fields that are known but would change the answer in a
way TextNLP cannot honour (tools, logprobs, logit_bias, penalties, echo, best_of, suffix,
non-text content) are refused with 400 by ``translate.refuse_unsupported``: silently ignoring
them would return something else than what was asked. Text must be valid Unicode
(``TextBoundary``), as on the native routes.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from textnlp.domain import MAX_TOKENS_LIMIT
from textnlp.services.text_boundary import TextBoundary

#: The most messages of one chat request (the native ``invoke`` route's bound).
MAX_MESSAGES = 64
#: The most prompts of one ``/v1/completions`` request.
MAX_PROMPTS = 16
#: The most texts of one ``/v1/embeddings`` request (OpenAI's own bound).
MAX_EMBEDDING_INPUTS = 2048
MODEL_ID = Field(min_length=1, max_length=200, description="A model id of `GET /v1/models`.")


class _Request(TextBoundary):
    # Strict, as OpenAI's API: "max_tokens": "2" is refused, not read as 2.
    model_config = ConfigDict(extra="ignore", strict=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Requests -----------------------------------------------------------------------------------
def _text_or_list(value: Any) -> str | None:
    return "text" if isinstance(value, str) else "list" if isinstance(value, list) else None


#: OpenAI's "a string or a list of them" fields, told apart by the value's type: an error then
#: names the member the value is (``messages.0.content.0.text``), not every member tried
#: (``content.str: Input should be a valid string``, then the list's).
_ONE_OR_LIST = Discriminator(
    _text_or_list,
    custom_error_type="string_or_list",
    custom_error_message="Input should be a string or a list",
)
TextOrTexts = Annotated[
    Annotated[str, Tag("text")] | Annotated[list[str], Tag("list")], _ONE_OR_LIST
]
#: The same, neither empty.
SomeText = Annotated[
    Annotated[str, Field(min_length=1), Tag("text")]
    | Annotated[list[str], Field(min_length=1), Tag("list")],
    _ONE_OR_LIST,
]


class StreamOptions(_Request):
    include_usage: bool = False


class TextPart(_Request):
    """A part of a message's content; only ``text`` parts are served."""

    type: str = Field(max_length=64)
    text: str | None = None


TextOrParts = Annotated[
    Annotated[str, Tag("text")] | Annotated[list[TextPart], Tag("list")], _ONE_OR_LIST
]


class ChatMessageIn(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: TextOrParts | None = None
    name: str | None = Field(None, max_length=256)
    tool_calls: list[Any] | None = None
    function_call: Any = None


class JsonSchemaFormat(_Request):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    #: The JSON Schema of the answer (checked as users' schemas are: ``safe_schema``).
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextFormat(_Request):
    type: Literal["text"]


class JsonObjectFormat(_Request):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(_Request):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")
]


class SamplingRequest(_Request):
    """What chat and text completions share: OpenAI's sampling fields (omitted ones take the
    model's catalogue defaults) and those refused when set."""

    model: str = MODEL_ID
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, le=16)
    stop: TextOrTexts | None = None
    #: Any 64-bit integer, as OpenAI takes; used modulo 2**32 (the engines' seed width).
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stream: bool | None = False  # null as false, as OpenAI takes it
    stream_options: StreamOptions | None = None
    # Known, refused when they ask for something (translate.refuse_unsupported).
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | int | None = None


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    response_format: ResponseFormat | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    modalities: list[str] | None = None
    audio: Any = None


class CompletionRequest(SamplingRequest):
    prompt: SomeText
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        # OpenAI takes token ids too (a list of ints, or of lists); pydantic then named every
        # member of the union it tried ("prompt.str: ... (+3 more)").
        if isinstance(value, list) and value and all(isinstance(v, int | list) for v in value):
            raise ValueError("prompts as token ids are not supported here: send text")
        return value


class EmbeddingRequest(_Request):
    model: str = MODEL_ID
    input: SomeText
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)


# Responses ----------------------------------------------------------------------------------
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
