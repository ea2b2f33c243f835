"""Which error of the tree an HTTP status (and message) of a model server means."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from textnlp.errors import (
    AuthFailed,
    BackendError,
    BackendUnavailable,
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
    Timeout,
)

log = logging.getLogger(__name__)

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


#: Phrases of a provider's 4xx that are about the deployment's account with it, not about the
#: request: Anthropic's ``invalid_request_error`` "Your credit balance is too low to access the
#: Anthropic API", OpenAI's ``billing_hard_limit_reached``, and OpenAI's 429
#: ``insufficient_quota`` "You exceeded your current quota, please check your plan and billing
#: details" (a 429, but no rate limit: waiting does not end it, paying does).
ACCOUNT_PHRASES = (
    "credit balance",
    "billing_hard_limit_reached",
    "insufficient_quota",
    "exceeded your current quota",
)


def told(cls: type[BackendError], text: str, summary: str) -> str:
    """What a user reads of a model server's error: its own text when it is about the request
    (too long, a parameter out of range), else ``summary``. A server's failure, its credentials
    or its provider's limits are the deployment's: their text names hosts, paths, roles, keys
    and organisations, so it goes to the log only."""
    if issubclass(cls, InvalidRequest | ContextWindowExceeded):
        return text
    log.warning("model server error (%s): %s", cls.__name__, text)
    return summary


def mentions_context(message: str) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in CONTEXT_PHRASES)


def deployment_fault(status: int, message: str) -> str | None:
    """Why a provider's 4xx is the deployment's to fix rather than the caller's (None: it is
    about the request). The caller names a catalogue model and its input; the provider's model
    id, its URL and the account that pays are the catalogue's and the operators'."""
    lowered = message.lower()
    # Bedrock answers a model id it does not serve (here, or to this account) with a 400
    # ValidationException, "The provided model identifier is invalid."
    if status == 404 or "model identifier is invalid" in lowered:
        return "the provider does not serve the model the catalogue names (a deployment problem)"
    if any(phrase in lowered for phrase in ACCOUNT_PHRASES):
        return "the provider refused the deployment's account (its credit or billing)"
    return None


def error_class(status: int, message: str = "") -> type[BackendError]:
    if status == 429:
        # OpenAI answers an account out of quota 429 too: the deployment's to fix, not the pace.
        return RateLimited if deployment_fault(status, message) is None else BackendUnavailable
    if status in (401, 403):
        return AuthFailed
    if status in (408, 504):
        return Timeout
    if status >= 500 or status in (424, 529):  # 424: SageMaker model error; 529: overloaded
        return BackendUnavailable
    if deployment_fault(status, message) is not None:
        return BackendUnavailable
    if mentions_context(message):
        return ContextWindowExceeded
    return InvalidRequest


#: TGI's ``error_type`` of an error event -> the status TGI answers it with outside a stream.
TGI_ERROR_STATUS = {"validation": 422, "template_error": 422, "overloaded": 429}


def event_error(event: Mapping[str, Any]) -> tuple[type[BackendError], str] | None:
    """The error a model server sent as an event of a 200 stream, as (class, message); None for
    an event that is not one. TGI sends ``{"error", "error_type"}``; vLLM and LMI send OpenAI's
    ``{"error": {"message", "type", "code"}}`` or ``{"object": "error", "message", "code"}``."""
    error = event.get("error")
    if event.get("object") == "error":
        error = event
    if error is None:
        return None
    if isinstance(error, Mapping):
        message, code = str(error.get("message", "")), error.get("code")
        status = code if isinstance(code, int) else 400 if "invalid" in str(error) else 500
    else:
        message = str(error)
        status = TGI_ERROR_STATUS.get(str(event.get("error_type")), 500)
    return error_class(status, message), message or "the model server sent an error"
