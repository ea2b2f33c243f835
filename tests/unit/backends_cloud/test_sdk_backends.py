"""The OpenAI-compatible and Anthropic backends through their SDKs, faked at the HTTP level
with ``httpx2.MockTransport`` (bodies from the OpenAI and Anthropic API references)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from textnlp.backends.anthropic_api import AnthropicBackend
from textnlp.backends.cloud import CloudContext
from textnlp.backends.openai_compat import OpenAICompatBackend
from textnlp.backends.providers.openai import VllmExtras
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import (
    AuthFailed,
    BackendUnavailable,
    ConfigError,
    ContextWindowExceeded,
    RateLimited,
)

PARAMS = GenerationParams(max_tokens=16, temperature=0.5, top_p=0.9, seed=3)
CHAT_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "served",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
}


class Recorder:
    def __init__(self, *responses: httpx2.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.responses.pop(0)

    def body(self, index: int = 0) -> Any:
        return json.loads(self.requests[index].content)


def client(handler: Callable[[httpx2.Request], httpx2.Response]) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


def openai_spec(**options: Any) -> ModelSpec:
    return ModelSpec(
        id="served",
        backend="openai",
        endpoint="http://vllm.test/v1",
        context_length=4096,
        options=options,
    )


def sse(*events: dict[str, Any]) -> httpx2.Response:
    wire = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=wire.encode()
    )


async def test_openai_chat_vllm_extras(context: CloudContext) -> None:
    recorder = Recorder(httpx2.Response(200, json=CHAT_OK), httpx2.Response(200, json=CHAT_OK))
    spec = openai_spec(flavour="vllm", model="meta-llama/Meta-Llama-3-8B-Instruct")
    async with OpenAICompatBackend(spec, context=context, http_client=client(recorder)) as backend:
        completion = await backend.generate_one(GenerationRequest.chat("Hi", params=PARAMS))
        schema = {"type": "object", "properties": {"a": {"type": "string"}}}
        await backend.complete_with(
            GenerationRequest.chat("Hi", params=PARAMS), VllmExtras(guided_json=schema, best_of=2)
        )
    assert (
        completion.text,
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    ) == ("Hello!", 8, 2)
    assert str(recorder.requests[0].url) == "http://vllm.test/v1/chat/completions"
    assert recorder.requests[0].headers["authorization"] == "Bearer not-needed"
    first = recorder.body(0)
    assert first["model"] == "meta-llama/Meta-Llama-3-8B-Instruct" and first["seed"] == 3
    assert recorder.body(1)["guided_json"] == schema and recorder.body(1)["best_of"] == 2


async def test_openai_completions_api_and_key_from_secret(context: CloudContext) -> None:
    answer = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "served",
        "choices": [{"text": " world", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 16, "total_tokens": 17},
    }
    recorder = Recorder(httpx2.Response(200, json=answer))
    spec = openai_spec(api="completions", api_key_secret="models/openai-api-key")
    async with OpenAICompatBackend(spec, context=context, http_client=client(recorder)) as backend:
        completion = await backend.generate_one(GenerationRequest(prompt="Hello", params=PARAMS))
    assert (completion.text, completion.finish_reason) == (" world", "length")
    assert recorder.requests[0].url.path == "/v1/completions"
    assert recorder.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_openai_vllm_extras_refused_elsewhere(context: CloudContext) -> None:
    async with OpenAICompatBackend(
        openai_spec(), context=context, http_client=client(Recorder())
    ) as backend:
        with pytest.raises(ConfigError):
            await backend.complete_with(GenerationRequest(prompt="x"), VllmExtras(best_of=2))


async def test_openai_errors_and_retries(context: CloudContext) -> None:
    limited = httpx2.Response(
        429,
        headers={"retry-after": "0"},
        json={
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
    )
    too_long = httpx2.Response(
        400,
        json={
            "error": {
                "message": "This model's maximum context length is 4096 tokens.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        },
    )
    recorder = Recorder(
        limited,
        httpx2.Response(502, text="bad gateway"),
        httpx2.Response(200, json=CHAT_OK),
        too_long,
        httpx2.Response(401, json={"error": {"message": "Incorrect API key"}}),
    )
    async with OpenAICompatBackend(
        openai_spec(), context=context, http_client=client(recorder)
    ) as backend:
        assert (
            await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
        ).text == "Hello!"
        with pytest.raises(ContextWindowExceeded):
            await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
        with pytest.raises(AuthFailed):
            await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    assert len(recorder.requests) == 5


async def test_an_answer_without_choices_is_the_servers_fault_not_an_empty_text(
    context: CloudContext,
) -> None:
    # A 200 of another shape (a proxy's page, a wrong server): it was an "ok" record of "".
    recorder = Recorder(*(httpx2.Response(200, json={"foo": 1}) for _ in range(10)))
    async with OpenAICompatBackend(
        openai_spec(), context=context, http_client=client(recorder)
    ) as backend:
        with pytest.raises(BackendUnavailable, match="unexpected body: no choices"):
            await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))


async def test_openai_rate_limited_gives_up(context: CloudContext) -> None:
    limited = httpx2.Response(429, json={"error": {"message": "slow down"}})
    recorder = Recorder(limited, limited, limited)
    async with OpenAICompatBackend(
        openai_spec(), context=context, http_client=client(recorder)
    ) as backend:
        with pytest.raises(RateLimited):
            await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))


async def test_openai_stream(context: CloudContext) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "served"}
    recorder = Recorder(
        sse(
            {
                **chunk,
                "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
            },
            {**chunk, "choices": [{"index": 0, "delta": {"content": "He"}, "finish_reason": None}]},
            {
                **chunk,
                "choices": [{"index": 0, "delta": {"content": "llo"}, "finish_reason": None}],
            },
            {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {
                **chunk,
                "choices": [],
                "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
            },
        )
    )
    async with OpenAICompatBackend(
        openai_spec(), context=context, http_client=client(recorder)
    ) as backend:
        deltas = [d async for d in backend.stream(GenerationRequest.chat("Hi", params=PARAMS))]
    assert [d.text for d in deltas] == ["He", "llo", ""]
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is not None and deltas[-1].usage.prompt_tokens == 4
    body = recorder.body()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_anthropic_messages(context: CloudContext) -> None:
    answer = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-model",
        "content": [{"type": "text", "text": "Hi! My name is Claude."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 2095, "output_tokens": 503},
    }
    recorder = Recorder(httpx2.Response(200, json=answer))
    spec = ModelSpec(
        id="claude", backend="anthropic", endpoint="claude-test-model", context_length=200000
    )
    async with AnthropicBackend(spec, context=context, http_client=client(recorder)) as backend:
        completion = await backend.generate_one(
            GenerationRequest.chat("Hello", system="Be kind.", params=PARAMS)
        )
    assert (
        completion.text,
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    ) == ("Hi! My name is Claude.", 2095, 503)
    body = recorder.body()
    assert body["model"] == "claude-test-model" and body["system"] == "Be kind."
    assert "anthropic_version" not in body
    headers = recorder.requests[0].headers
    assert "sk-ant-test" in (headers.get("x-api-key", "") + headers.get("authorization", ""))


#: The ``message`` of Anthropic's ``message_start`` stream event (its streaming docs).
STARTED_MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 1},
}


async def test_anthropic_stream(context: CloudContext) -> None:
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    message = {**STARTED_MESSAGE, "usage": {"input_tokens": 25, "output_tokens": 1}}
    wire = "".join(
        [
            event("message_start", {"message": message}),
            event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            ),
            event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
            ),
            event(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "!"}}
            ),
            event("content_block_stop", {"index": 0}),
            event(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 15},
                },
            ),
            event("message_stop", {}),
        ]
    )
    recorder = Recorder(
        httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=wire.encode())
    )
    spec = ModelSpec(
        id="claude", backend="anthropic", endpoint="claude-test-model", context_length=200000
    )
    async with AnthropicBackend(spec, context=context, http_client=client(recorder)) as backend:
        deltas = [d async for d in backend.stream(GenerationRequest.chat("Hi", params=PARAMS))]
    assert "".join(d.text for d in deltas) == "Hello!"
    assert deltas[-1].usage is not None
    assert (deltas[-1].usage.prompt_tokens, deltas[-1].usage.completion_tokens) == (25, 15)


async def test_an_overloaded_event_in_an_anthropic_stream_is_the_servers_fault(
    context: CloudContext,
) -> None:
    # Anthropic's streaming docs: "an error event" can arrive after the 200, e.g.
    # {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}.
    start = {"type": "message_start", "message": STARTED_MESSAGE}
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    wire = f"event: message_start\ndata: {json.dumps(start)}\n\n"
    wire += f"event: error\ndata: {json.dumps(error)}\n\n"
    recorder = Recorder(
        *[
            httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=wire.encode()
            )
        ]
        * 3
    )
    spec = ModelSpec(id="claude", backend="anthropic", endpoint="m", context_length=200000)
    async with AnthropicBackend(spec, context=context, http_client=client(recorder)) as backend:
        with pytest.raises(BackendUnavailable) as raised:
            [d async for d in backend.stream(GenerationRequest.chat("Hi", params=PARAMS))]
    assert raised.value.retryable and not raised.value.user_error


@pytest.mark.parametrize(
    ("event", "error"),
    [
        # vLLM's error event as OpenAI's error object: the SDK raises APIError, no status.
        (
            {
                "error": {
                    "message": "This model's maximum context length is 4096 tokens",
                    "type": "BadRequestError",
                    "code": 400,
                }
            },
            ContextWindowExceeded,
        ),
        # vLLM's older ErrorResponse: the SDK yields it as a chunk without choices.
        (
            {
                "object": "error",
                "message": "CUDA out of memory",
                "type": "InternalServerError",
                "code": 500,
            },
            BackendUnavailable,
        ),
    ],
)
async def test_an_error_event_in_an_openai_compatible_stream_is_raised_by_its_code(
    context: CloudContext, event: dict[str, Any], error: type[Exception]
) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "served"}
    first = {**chunk, "choices": [{"index": 0, "delta": {"content": "He"}, "finish_reason": None}]}
    recorder = Recorder(*[sse(first, event)] * 3)
    async with OpenAICompatBackend(
        openai_spec(), context=context, http_client=client(recorder)
    ) as backend:
        with pytest.raises(error):
            [d async for d in backend.stream(GenerationRequest.chat("Hi", params=PARAMS))]


async def test_a_model_servers_own_failure_text_stays_in_the_log(
    context: CloudContext, caplog: pytest.LogCaptureFixture
) -> None:
    """A server's 500 names its hosts, paths and keys: the user (and, once the circuit opens,
    the health report) read that it failed, the log reads what it said. A 400 about the
    request keeps its words."""
    internal = "CUDA OOM in /opt/vllm/engine.py on gpu-node-7.internal (10.0.3.17), api_key=sk-x"
    failing = httpx2.Response(500, json={"error": {"message": internal}})
    too_long = httpx2.Response(
        400, json={"error": {"message": "maximum context length is 4096 tokens"}}
    )
    recorder = Recorder(too_long, failing, failing, failing)
    async with OpenAICompatBackend(
        openai_spec(), context=context, http_client=client(recorder)
    ) as backend:
        with pytest.raises(ContextWindowExceeded) as refused:
            await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
        with pytest.raises(BackendUnavailable) as failed:
            await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    assert "gpu-node-7" not in str(failed.value) and "500" in str(failed.value)
    assert "gpu-node-7" in caplog.text
    assert "maximum context length is 4096 tokens" in str(refused.value)
