"""Request and response bodies of the API (the "protocol"), shared with ``textnlp.client``.

Requests forbid unknown fields and refuse text that is not valid Unicode (``TextBoundary``);
bounds that do not depend on settings are in the types, the rest (``api.max_tokens``,
``api.max_prompt_chars``...) is checked by the serving layer before any model runs.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from textnlp.auth.rules import KEY_NAME_PATTERN, MAX_KEY_NAME, MAX_PASSWORD
from textnlp.domain import MAX_TOKENS_LIMIT, ChatMessage, ModelInfo
from textnlp.services.text_boundary import TextBoundary

JsonScalar = str | int | float | bool
#: A catalogue template id (``PromptTemplate.id``'s pattern): never a path on the server.
TEMPLATE_ID = r"^[a-z0-9][a-z0-9_-]*$"


class _Request(TextBoundary):
    # Strict: a JSON body's "2" is not the number 2, nor "yes" a boolean (as OpenAI's API).
    model_config = ConfigDict(extra="forbid", strict=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Auth ---------------------------------------------------------------------------------------
class LoginRequest(_Request):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class RefreshRequest(_Request):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenResponse(_Response):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class LogoutResponse(_Response):
    revoked: bool = True


class ApiKeyCreate(_Request):
    #: The pattern documents the service's rule (``check_key_name``), which checks it with a
    #: message of its own.
    name: str = Field(
        min_length=1, max_length=MAX_KEY_NAME, json_schema_extra={"pattern": KEY_NAME_PATTERN}
    )


class ApiKeyCreated(_Response):
    id: str
    name: str
    #: The key itself, shown this once.
    key: str


class ApiKeyInfo(_Response):
    id: str
    name: str
    revoked: bool
    created_at: Any = None


class ApiKeyList(_Response):
    data: list[ApiKeyInfo]


# Generation ---------------------------------------------------------------------------------
class SamplingFields(_Request):
    max_tokens: int = Field(256, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    stop: list[str] = Field(default_factory=list, max_length=4)
    n: int = Field(1, ge=1, le=16)


class GenerateTextRequest(SamplingFields):
    """A prompt, or a template with variables; ``stream`` answers Server-Sent Events."""

    model: str | None = Field(None, min_length=1, max_length=200)  # "" is no model: refused
    prompt: str | None = None
    system: str | None = None
    #: A catalogue template id (``textnlp templates list``), never a file path.
    template: str | None = Field(None, max_length=200, pattern=TEMPLATE_ID)
    variables: dict[str, JsonScalar] = Field(default_factory=dict, max_length=64)
    #: Seeds the sampling of the template's variables that ``variables`` leaves open.
    template_seed: int = Field(0, ge=0, le=2**32 - 1)
    stream: bool = False

    @model_validator(mode="after")
    def _prompt_or_template(self) -> GenerateTextRequest:
        if (self.prompt is None) == (self.template is None):
            raise ValueError("give exactly one of 'prompt' and 'template'")
        if self.template is None and self.variables:
            raise ValueError("'variables' needs a 'template'")
        if self.stream and self.n > 1:
            raise ValueError("streaming supports n = 1 only")
        return self


class StreamRequest(GenerateTextRequest):
    """What a WebSocket client sends (``stream`` is implied)."""

    stream: bool = True


class InvokeRequest(SamplingFields):
    """A raw invocation of one model: a prompt or chat messages."""

    prompt: str | None = None
    system: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> InvokeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' and 'messages'")
        if self.messages is not None and self.system is not None:
            raise ValueError("'system' goes with 'prompt'; put it in 'messages' instead")
        return self


class CompletionChoice(_Response):
    index: int
    text: str
    finish_reason: str | None


class CompletionUsage(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionResponse(_Response):
    """OpenAI's completions shape, plus ``cached``."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    cached: bool = False


# Models -------------------------------------------------------------------------------------
class ModelList(_Response):
    object: Literal["list"] = "list"
    data: list[ModelInfo]


# Validation ---------------------------------------------------------------------------------
class QualityRequest(_Request):
    texts: list[str] = Field(min_length=1, max_length=100)
    #: Check each text for a JSON object (against ``json_schema`` when given).
    expect_json: bool = False
    json_schema: dict[str, Any] | None = None
    readability: bool = True
    language: bool = True


class QualityResponse(_Response):
    count: int
    results: list[dict[str, Any]]
    summary: dict[str, float | None]


class SimilarityRequest(_Request):
    candidates: list[str] = Field(min_length=1, max_length=100)
    references: list[str] = Field(min_length=1, max_length=100)
    #: Embedding cosine and BERTScore need the MiniLM model (loaded on first use).
    embeddings: bool = False
    bertscore: bool = False

    @model_validator(mode="after")
    def _same_length(self) -> SimilarityRequest:
        if len(self.candidates) != len(self.references):
            raise ValueError("'candidates' and 'references' need the same length")
        return self


class SimilarityResponse(_Response):
    count: int
    pairs: list[dict[str, Any]]
    corpus: dict[str, float | None]
    #: Pairs without cosine and BERTScore: the MiniLM model cannot read one of their texts
    #: (Thai, Khmer, emoji only...); null when neither was asked for.
    embedding_unreadable: int | None = None


class MetricAggregate(_Response):
    kind: str
    metric: str
    count: int
    mean: float
    min: float
    max: float


class ValidationMetrics(_Response):
    measured: dict[str, dict[str, str]]
    aggregates: list[MetricAggregate]


# Admin --------------------------------------------------------------------------------------
class ComponentHealth(_Response):
    #: ``busy``: it answers but refuses a new connection (a database at its connection limit);
    #: the API still serves through the connections it holds.
    status: Literal["ok", "busy", "down", "unchecked"]
    detail: str = ""


class HealthResponse(_Response):
    #: ``degraded``: something is down, the API serves the rest; ``down``: the database is.
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, ComponentHealth]
    models: dict[str, ComponentHealth]


class Liveness(_Response):
    status: Literal["ok"]


class CacheCleared(_Response):
    cleared: int


class ErrorDetail(_Response):
    type: str
    message: str


class ErrorResponse(_Response):
    error: ErrorDetail


#: Error answers every route may give, documented in the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "A body that cannot be parsed (not UTF-8, or nested too deeply).",
        401: "Missing, invalid, expired or revoked credentials.",
        403: "Authenticated, but not allowed (admin routes).",
        404: "Unknown model, template, job or key.",
        408: "The request body did not arrive in time (`api.body_timeout_s`).",
        409: "In conflict with what is stored: cancelling a job that has ended, deleting a "
        "file a job reads, a user's key limit, demoting or disabling the last admin.",
        413: "Request body too large.",
        422: "Invalid request: malformed JSON, wrong types, unknown fields, out-of-range values.",
        429: "Rate limit exceeded (see Retry-After), or spending cap reached.",
        500: "Internal error.",
        501: "A feature whose optional extra is not installed here (e.g. `validation`).",
        502: "A model backend failed.",
        503: "A model backend or component is unavailable, or the server is at its limit of "
        "requests in progress (see Retry-After).",
        504: "A model backend did not answer in time.",
    }.items()
}
