"""Requests, completions and model descriptions shared by every layer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Hard bounds of the public contract (DESIGN.md); a model's context may lower max_tokens further.
MAX_TOKENS_LIMIT = 4096
#: The largest sampling seed (32 bits, what every backend takes).
MAX_SEED = 2**32 - 1

FinishReason = Literal["stop", "length", "error"]
Role = Literal["system", "user", "assistant"]


class GenerationParams(BaseModel):
    """Sampling parameters, the same for every backend."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_tokens: int = Field(256, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stop: tuple[str, ...] = ()
    n: int = Field(1, ge=1, le=16)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: object) -> object:
        """One string or several; an empty one is dropped (it would end every answer at once:
        each text ends with the empty string)."""
        if value is None:
            return ()
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, list | tuple):
            return tuple(stop for stop in value if stop != "")
        return value

    @property
    def deterministic(self) -> bool:
        """Whether the same request always yields the same text (cacheable)."""
        return self.temperature == 0.0 or self.seed is not None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str

    @staticmethod
    def joined(texts: Iterable[str]) -> str:
        """A message's text content parts as its content: one per line, as vLLM joins them
        (the online routes and batch lines alike: one request, one answer)."""
        return "\n".join(texts)


class GenerationRequest(BaseModel):
    """One prompt for one completion. Chat models get ``messages``; ``prompt`` is raw text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    params: GenerationParams = GenerationParams()
    #: Generate until max_tokens even past end-of-sequence (benchmarks need equal lengths).
    ignore_eos: bool = False
    #: A raw ``prompt``'s control tokens (``<|im_start|>``...) are read as such: a recipe's
    #: Magpie pre-query. Never set for a user's prompt (it could forge turns).
    control_tokens: bool = False
    #: A GBNF grammar the output must follow (a judge's score, a JSON Schema's shape).
    #: Backends that decode under a grammar (llama.cpp) keep to it; the others ignore it, so
    #: the caller still checks the text. Never taken from a user: a grammar is code to run
    #: (a user's JSON Schema becomes one through ``json_grammar``, which escapes and bounds it).
    grammar: str | None = None
    #: The backend may keep this prompt's KV beyond the process (the llama.cpp engine's prefix
    #: store): a recipe's cells, whose re-run after an edit asks again for prompts that start
    #: the same. Never set for a user's request (its prompt would be kept on disk).
    keep_prompt: bool = False
    #: Whose cached prompt KV the backend may reuse for this request: a server's user id
    #: (``ScopedBackend``), so that one user's prompt never starts faster for what another's
    #: left behind (a timing oracle of their prompts); None: the process's own work.
    cache_scope: str | None = None

    @classmethod
    def chat(
        cls, user: str, *, system: str | None = None, params: GenerationParams | None = None
    ) -> GenerationRequest:
        messages = [ChatMessage(role="system", content=system)] if system else []
        messages.append(ChatMessage(role="user", content=user))
        return cls(messages=tuple(messages), params=params or GenerationParams())

    def as_text(self) -> str:
        """A plain-text rendering, for backends without a chat format and for logs."""
        if self.prompt is not None:
            return self.prompt
        return "\n\n".join(m.content for m in self.messages)


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Estimated price in US dollars, where the model has one in the price table.
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: FinishReason
    model: str
    usage: Usage = Usage()
    latency_s: float = 0.0
    cached: bool = False


class TokenDelta(BaseModel):
    """A piece of streamed text; the last one has ``finish_reason`` and ``usage``."""

    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


class ModelInfo(BaseModel):
    """What the catalogue and ``info()`` say about a model."""

    model_config = ConfigDict(extra="forbid")

    id: str
    backend: str
    context_length: int
    description: str = ""
    provider: str = ""
    chat: bool = True
    streaming: bool = True
    batching: bool = False
    available: bool = True
    #: Why the model is unavailable here, when it is.
    reason: str = ""
