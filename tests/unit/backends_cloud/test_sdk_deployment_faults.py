"""Whose fault a provider's 4xx is: the caller's (their prompt, their parameters) or the
deployment's (the catalogue names a model the provider does not serve; the account that pays is
out of credit). The deployment's answered the caller 400/404 as if their request were wrong; it
is ``BackendUnavailable`` (503) with a message that says what happened. Faked at the HTTP level
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
from textnlp.errors import BackendError, BackendUnavailable, ContextWindowExceeded, InvalidRequest

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
