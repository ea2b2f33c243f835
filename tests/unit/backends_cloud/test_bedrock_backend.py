"""The Bedrock backend over botocore, with a fake at the HTTP level (``fakes.AwsFake``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.backends_cloud.fakes import (
    AwsFake,
    aws_error,
    bedrock_chunk,
    converse_event,
    json_response,
    stream_response,
)
from textnlp.backends.bedrock import BedrockBackend
from textnlp.backends.cloud import CloudContext
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import BackendUnavailable, ContextWindowExceeded, InvalidRequest, RateLimited

pytestmark = pytest.mark.usefixtures("fake_aws_credentials")

PARAMS = GenerationParams(max_tokens=100, temperature=0.7, top_p=0.9)
CONVERSE_OK = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Fine blender."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
    "metrics": {"latencyMs": 300},
}


def spec(model: str = "anthropic.claude-v2", **options: Any) -> ModelSpec:
    return ModelSpec(
        id=model, backend="bedrock", endpoint=model, context_length=8192, options=options
    )


async def loaded(spec_: ModelSpec, context: CloudContext) -> tuple[BedrockBackend, AwsFake]:
    backend = BedrockBackend(spec_, context=context)
    await backend.load()
    return backend, AwsFake(backend._client)


@pytest.fixture
async def claude(context: CloudContext) -> AsyncIterator[tuple[BedrockBackend, AwsFake]]:
    backend, fake = await loaded(spec(), context)
    yield backend, fake
    await backend.aclose()


async def test_converse_completion_with_usage_and_cost(
    claude: tuple[BedrockBackend, AwsFake],
) -> None:
    backend, fake = claude
    fake.queue(json_response(CONVERSE_OK))
    completion = await backend.generate_one(
        GenerationRequest.chat("Review a blender", system="Terse.", params=PARAMS)
    )
    assert completion.text == "Fine blender."
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 3)
    assert completion.usage.cost_usd == pytest.approx((12 * 0.008 + 3 * 0.024) / 1000)
    sent = fake.requests[0]
    assert sent.url.endswith("/model/anthropic.claude-v2/converse")
    assert sent.json()["system"] == [{"text": "Terse."}]
    # Claude: temperature alone (recent models refuse it beside top_p)
    assert sent.json()["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.7}


async def test_throttling_is_retried_then_succeeds(claude: tuple[BedrockBackend, AwsFake]) -> None:
    backend, fake = claude
    fake.queue(
        aws_error(
            "ThrottlingException", "Too many requests, please wait before trying again.", 429
        ),
        aws_error("ServiceUnavailableException", "Service unavailable", 503),
        json_response(CONVERSE_OK),
    )
    completion = await backend.generate_one(GenerationRequest(prompt="hi", params=PARAMS))
    assert completion.text == "Fine blender."
    assert len(fake.requests) == 3


async def test_throttling_gives_up_after_max_attempts(
    claude: tuple[BedrockBackend, AwsFake],
) -> None:
    backend, fake = claude
    fake.queue(*[aws_error("ThrottlingException", "Rate exceeded", 429)] * 3)
    with pytest.raises(RateLimited) as caught:
        await backend.generate_one(GenerationRequest(prompt="hi", params=PARAMS))
    assert (caught.value.backend, caught.value.model) == ("bedrock", "anthropic.claude-v2")
    assert len(fake.requests) == 3


async def test_validation_errors_are_not_retried(claude: tuple[BedrockBackend, AwsFake]) -> None:
    backend, fake = claude
    fake.queue(aws_error("ValidationException", "Input is too long for requested model.", 400))
    with pytest.raises(ContextWindowExceeded):
        await backend.generate_one(GenerationRequest(prompt="hi", params=PARAMS))
    fake.queue(aws_error("ValidationException", "Malformed input request", 400))
    with pytest.raises(InvalidRequest):
        await backend.generate_one(GenerationRequest(prompt="hi", params=PARAMS))
    assert len(fake.requests) == 2


async def test_a_model_id_bedrock_does_not_serve_is_the_deployments_fault(
    claude: tuple[BedrockBackend, AwsFake],
) -> None:
    """Bedrock's 400 for a model id it does not serve here: the catalogue's to fix, not the
    caller's request (503, retried; before: InvalidRequest, answered as the caller's 400)."""
    backend, fake = claude
    fake.queue(
        *[aws_error("ValidationException", "The provided model identifier is invalid.", 400)] * 3
    )
    with pytest.raises(BackendUnavailable) as caught:
        await backend.generate_one(GenerationRequest(prompt="hi", params=PARAMS))
    assert "does not serve the model" in caught.value.message


async def test_circuit_opens_after_repeated_failures(
    claude: tuple[BedrockBackend, AwsFake],
) -> None:
    backend, fake = claude
    fake.queue(*[aws_error("InternalServerException", "boom", 500)] * 3)
    with pytest.raises(BackendUnavailable):
        await backend.generate_one(GenerationRequest(prompt="hi", params=PARAMS))
    state = backend.circuit_state()
    assert state is not None and state.state == "open" and state.consecutive_failures == 3
    assert backend.info().available is False
    with pytest.raises(BackendUnavailable, match="next try"):
        await backend.generate_one(GenerationRequest(prompt="hi", params=PARAMS))
    assert len(fake.requests) == 3  # the open circuit sent nothing


async def test_converse_stream(claude: tuple[BedrockBackend, AwsFake]) -> None:
    backend, fake = claude
    fake.queue(
        stream_response(
            [
                converse_event("messageStart", {"role": "assistant"}),
                converse_event(
                    "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Lou"}}
                ),
                converse_event(
                    "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "d."}}
                ),
                converse_event("contentBlockStop", {"contentBlockIndex": 0}),
                converse_event("messageStop", {"stopReason": "end_turn"}),
                converse_event(
                    "metadata",
                    {
                        "usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11},
                        "metrics": {"latencyMs": 50},
                    },
                ),
            ]
        )
    )
    deltas = [d async for d in backend.stream(GenerationRequest(prompt="hi", params=PARAMS))]
    assert [d.text for d in deltas] == ["Lou", "d.", ""]
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens == 2
    assert fake.requests[0].url.endswith("/converse-stream")


async def test_invoke_titan_with_token_headers(context: CloudContext) -> None:
    backend, fake = await loaded(spec("amazon.titan-text-express-v1", api="invoke"), context)
    fake.queue(
        json_response(
            {
                "inputTextTokenCount": 4,
                "results": [{"tokenCount": 2, "outputText": "Hi!", "completionReason": "FINISH"}],
            }
        )
    )
    completion = await backend.generate_one(GenerationRequest(prompt="Hello", params=PARAMS))
    assert (
        completion.text,
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    ) == ("Hi!", 4, 2)
    assert fake.requests[0].url.endswith("/model/amazon.titan-text-express-v1/invoke")
    assert fake.requests[0].json()["textGenerationConfig"]["maxTokenCount"] == 100
    await backend.aclose()


async def test_invoke_mistral_counts_from_headers(context: CloudContext) -> None:
    backend, fake = await loaded(spec("mistral.mistral-7b-instruct-v0:2", api="invoke"), context)
    fake.queue(
        json_response(
            {"outputs": [{"text": "Yes.", "stop_reason": "stop"}]},
            headers={
                "X-Amzn-Bedrock-Input-Token-Count": "11",
                "X-Amzn-Bedrock-Output-Token-Count": "2",
            },
        )
    )
    completion = await backend.generate_one(GenerationRequest.chat("Ok?", params=PARAMS))
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 2)
    await backend.aclose()


async def test_invoke_stream_anthropic_messages(context: CloudContext) -> None:
    backend, fake = await loaded(spec(api="invoke"), context)
    fake.queue(
        stream_response(
            [
                bedrock_chunk(
                    {
                        "type": "message_start",
                        "message": {"usage": {"input_tokens": 7, "output_tokens": 1}},
                    }
                ),
                bedrock_chunk(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "Sure"},
                    }
                ),
                bedrock_chunk(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "max_tokens"},
                        "usage": {"output_tokens": 100},
                    }
                ),
                bedrock_chunk(
                    {
                        "type": "message_stop",
                        "amazon-bedrock-invocationMetrics": {
                            "inputTokenCount": 7,
                            "outputTokenCount": 100,
                            "invocationLatency": 1,
                            "firstByteLatency": 1,
                        },
                    }
                ),
            ]
        )
    )
    deltas = [d async for d in backend.stream(GenerationRequest(prompt="hi", params=PARAMS))]
    assert "".join(d.text for d in deltas) == "Sure"
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage is not None and deltas[-1].usage.prompt_tokens == 7
    body = json.loads(fake.requests[0].body)
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert fake.requests[0].url.endswith("/invoke-with-response-stream")
    await backend.aclose()


async def test_jurassic_streams_as_one_chunk(context: CloudContext) -> None:
    backend, fake = await loaded(spec("ai21.j2-ultra-v1", api="invoke"), context)
    fake.queue(
        json_response(
            {
                "id": 1,
                "prompt": {"text": "x", "tokens": [{}]},
                "completions": [
                    {
                        "data": {"text": "Done.", "tokens": [{}, {}]},
                        "finishReason": {"reason": "endoftext"},
                    }
                ],
            }
        )
    )
    deltas = [d async for d in backend.stream(GenerationRequest(prompt="x", params=PARAMS))]
    assert [d.text for d in deltas] == ["Done.", ""]
    assert fake.requests[0].url.endswith("/invoke")
    await backend.aclose()


async def test_error_event_in_stream(claude: tuple[BedrockBackend, AwsFake]) -> None:
    from tests.unit.backends_cloud.fakes import event_frame

    backend, fake = claude
    fake.queue(
        stream_response(
            [
                converse_event(
                    "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "a"}}
                ),
                event_frame(
                    "throttlingException",
                    json.dumps({"message": "slow down"}).encode(),
                    message_type="exception",
                ),
            ]
        )
    )
    with pytest.raises(RateLimited):
        [d async for d in backend.stream(GenerationRequest(prompt="hi", params=PARAMS))]


async def test_context_checked_before_sending(claude: tuple[BedrockBackend, AwsFake]) -> None:
    backend, fake = claude
    with pytest.raises(ContextWindowExceeded):
        await backend.generate_one(GenerationRequest(prompt="word " * 8000, params=PARAMS))
    assert fake.requests == []
