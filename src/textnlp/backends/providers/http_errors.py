"""Which error of the tree an HTTP status (and message) of a model server means."""

from __future__ import annotations

from textnlp.errors import (
    AuthFailed,
    BackendError,
    BackendUnavailable,
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
    Timeout,
)

#: Phrases servers use when a prompt does not fit (OpenAI ``context_length_exceeded``, vLLM
#: "maximum context length", TGI "`inputs` tokens + `max_new_tokens` must be <= N", Bedrock
#: "Input is too long for requested model").
CONTEXT_PHRASES = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "too long",
    "max_total_tokens",
    "`max_new_tokens` must be <=",
    "input length",
    "exceeds the context",
    "prompt is too long",
)


def mentions_context(message: str) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in CONTEXT_PHRASES)


def error_class(status: int, message: str = "") -> type[BackendError]:
    if status == 429:
        return RateLimited
    if status in (401, 403):
        return AuthFailed
    if status in (408, 504):
        return Timeout
    if status >= 500 or status in (424, 529):  # 424: SageMaker model error; 529: overloaded
        return BackendUnavailable
    if mentions_context(message):
        return ContextWindowExceeded
    return InvalidRequest
