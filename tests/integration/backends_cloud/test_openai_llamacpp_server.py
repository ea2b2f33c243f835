"""The OpenAI-compatible backend against a real server: llama-cpp-python's, embedded model."""

from __future__ import annotations

import pytest

from textnlp.adapters.secrets import EnvSecrets
from textnlp.backends.cloud import CloudContext
from textnlp.backends.openai_compat import OpenAICompatBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import BackendUnavailable

pytestmark = pytest.mark.slow
PARAMS = GenerationParams(max_tokens=12, temperature=0.0, top_p=1.0, seed=1)


def backend(url: str, **options: object) -> OpenAICompatBackend:
    spec = ModelSpec(
        id="smollm2", backend="openai", endpoint=url, context_length=2048, options=options
    )
    return OpenAICompatBackend(spec, context=CloudContext(secrets=EnvSecrets({})))


async def test_chat_completion(llama_server: str) -> None:
    async with backend(llama_server) as chat:
        completions = await chat.generate(
            [GenerationRequest.chat("Name a colour.", params=PARAMS) for _ in range(2)]
        )
    for completion in completions:
        assert completion.text.strip()
        assert completion.finish_reason in ("stop", "length")
        assert completion.usage.prompt_tokens > 0 and 0 < completion.usage.completion_tokens <= 12
        assert completion.usage.cost_usd is None  # a self-hosted server has no price


async def test_text_completion_hits_max_tokens(llama_server: str) -> None:
    async with backend(llama_server, api="completions") as text:
        completion = await text.generate_one(
            GenerationRequest(prompt="One, two, three, four,", params=PARAMS)
        )
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 12


async def test_chat_stream(llama_server: str) -> None:
    async with backend(llama_server) as chat:
        deltas = [d async for d in chat.stream(GenerationRequest.chat("Say hello.", params=PARAMS))]
    assert len(deltas) > 2 and "".join(d.text for d in deltas).strip()
    assert deltas[-1].finish_reason in ("stop", "length") and deltas[-1].usage is not None
    assert deltas[-1].usage.completion_tokens > 0


async def test_completion_stream(llama_server: str) -> None:
    async with backend(llama_server, api="completions") as text:
        request = GenerationRequest(prompt="The sky is", params=PARAMS)
        deltas = [d async for d in text.stream(request)]
    assert deltas[-1].finish_reason == "length" and "".join(d.text for d in deltas)


async def test_unreachable_server_is_unavailable() -> None:
    from tests.conftest import free_port

    async with backend(f"http://127.0.0.1:{free_port()}/v1") as gone:
        with pytest.raises(BackendUnavailable):
            await gone.generate_one(GenerationRequest(prompt="x", params=PARAMS))
