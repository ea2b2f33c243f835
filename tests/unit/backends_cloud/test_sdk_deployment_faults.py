"""Whose fault a provider's 4xx is: the caller's (their prompt, their parameters) or the
deployment's (the catalogue names a model the provider does not serve; the account that pays is
out of credit or quota). The deployment's answered the caller 400/404 as if their request were
wrong, and OpenAI's 429 ``insufficient_quota`` as a rate limit to wait out; it is
``BackendUnavailable`` (503) with a message that says what happened. Faked at the HTTP level
with ``httpx2.MockTransport``; bodies from the OpenAI and Anthropic API references ("Errors")."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from textnlp.backends.anthropic_api import AnthropicBackend
from textnlp.backends.base import Backend
from textnlp.backends.cloud import CloudContext
from textnlp.backends.openai_compat import OpenAICompatBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import (
    BackendError,
    BackendUnavailable,
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
)

PARAMS = GenerationParams(max_tokens=16)


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


OPENAI_NO_MODEL = {
    "error": {
        "message": "The model `gpt-9-turbo` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
}
#: OpenAI's 429 for an account out of credit or past its spending limit ("Error codes": 429
#: "You exceeded your current quota, please check your plan and billing details").
OPENAI_NO_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details. "
        "For more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
#: And its 429 that is a rate limit: waiting is the answer.
OPENAI_RATE_LIMIT = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-abc on requests per "
        "min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
ANTHROPIC_NO_MODEL = anthropic_error("not_found_error", "model: claude-9-opus")
NO_CREDIT = anthropic_error(
    "invalid_request_error",
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing "
    "to upgrade or purchase credits.",
)
PROMPT_TOO_LONG = anthropic_error(
    "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
)
BAD_MESSAGES = anthropic_error(
    "invalid_request_error", 'messages: roles must alternate between "user" and "assistant"'
)


def backend(provider: str, status: int, body: dict[str, Any], context: CloudContext) -> Backend:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body)

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    if provider == "openai":
        spec = ModelSpec(
            id="gpt", backend="openai", endpoint="https://api.openai.test/v1", context_length=8192
        )
        return OpenAICompatBackend(spec, context=context, http_client=http)
    spec = ModelSpec(
        id="claude", backend="anthropic", endpoint="claude-9-opus", context_length=200000
    )
    return AnthropicBackend(spec, context=context, http_client=http)


@pytest.mark.parametrize(
    ("provider", "status", "body", "says"),
    [
        ("openai", 404, OPENAI_NO_MODEL, "does not serve the model the catalogue names"),
        ("anthropic", 404, ANTHROPIC_NO_MODEL, "does not serve the model the catalogue names"),
        ("anthropic", 400, NO_CREDIT, "refused the deployment's account"),
        ("openai", 429, OPENAI_NO_QUOTA, "refused the deployment's account"),
    ],
)
async def test_the_deployments_fault_is_unavailable_not_the_callers(
    context: CloudContext, provider: str, status: int, body: dict[str, Any], says: str
) -> None:
    async with backend(provider, status, body, context) as model:
        with pytest.raises(BackendError) as raised:
            await model.generate_one(GenerationRequest.chat("Hi", params=PARAMS))
    error = raised.value
    assert isinstance(error, BackendUnavailable), error
    assert error.http_status == 503 and not error.user_error
    assert says in error.message and f"HTTP {status}" in error.message


@pytest.mark.parametrize(
    ("body", "error"),
    [(PROMPT_TOO_LONG, ContextWindowExceeded), (BAD_MESSAGES, InvalidRequest)],
)
async def test_a_400_about_the_callers_request_stays_theirs(
    context: CloudContext, body: dict[str, Any], error: type[BackendError]
) -> None:
    async with backend("anthropic", 400, body, context) as model:
        with pytest.raises(error) as raised:
            await model.generate_one(GenerationRequest.chat("Hi", params=PARAMS))
    assert raised.value.user_error and raised.value.http_status == 400
    assert body["error"]["message"] in raised.value.message


async def test_a_429_that_is_a_rate_limit_stays_one(context: CloudContext) -> None:
    async with backend("openai", 429, OPENAI_RATE_LIMIT, context) as model:
        with pytest.raises(RateLimited) as raised:
            await model.generate_one(GenerationRequest.chat("Hi", params=PARAMS))
    assert raised.value.http_status == 429 and raised.value.retryable
