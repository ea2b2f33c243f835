"""The SageMaker backend over botocore, with a fake at the HTTP level (``fakes.AwsFake``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from tests.unit.backends_cloud.fakes import (
    AwsFake,
    Canned,
    Unreachable,
    aws_error,
    json_response,
    payload_part,
    stream_response,
)
from textnlp.api.errors import public_body
from textnlp.backends.cloud import CloudContext
from textnlp.backends.registry import ModelCatalogue
from textnlp.backends.sagemaker import SageMakerBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import (
    BackendError,
    BackendUnavailable,
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
    Timeout,
    public_reason,
)

pytestmark = pytest.mark.usefixtures("fake_aws_credentials")

PARAMS = GenerationParams(max_tokens=20, temperature=0.7, top_p=0.9)


async def loaded(spec: ModelSpec, context: CloudContext) -> tuple[SageMakerBackend, AwsFake]:
    backend = SageMakerBackend(spec, context=context)
    await backend.load()
    return backend, AwsFake(backend._client)


async def test_invoke_tgi_with_target_variant(context: CloudContext) -> None:
    spec = ModelCatalogue.load().get("llama-7b")
    backend, fake = await loaded(spec, context)
    fake.queue(
        json_response(
            [
                {
                    "generated_text": " a fox.",
                    "details": {"finish_reason": "eos_token", "generated_tokens": 3, "seed": 1},
                }
            ],
            headers={"x-Amzn-Invoked-Production-Variant": "llama-7b"},
        )
    )
    completion = await backend.generate_one(
        GenerationRequest(prompt="Once upon a time", params=PARAMS)
    )
    assert (completion.text, completion.finish_reason, completion.usage.completion_tokens) == (
        " a fox.",
        "stop",
        3,
    )
    assert completion.usage.cost_usd is None  # no price for a self-hosted endpoint
    sent = fake.requests[0]
    assert sent.url.endswith("/endpoints/textnlp-multi-model/invocations")
    assert sent.headers["X-Amzn-SageMaker-Target-Variant"] == "llama-7b"
    assert sent.json()["parameters"]["max_new_tokens"] == 20
    await backend.aclose()


async def test_stream_tgi_token_events(context: CloudContext) -> None:
    spec = ModelSpec(
        id="gpt-j-6b",
        backend="sagemaker",
        endpoint="textnlp-multi-model",
        options={"target_variant": "gpt-j-6b"},
    )
    backend, fake = await loaded(spec, context)
    events = [
        {
            "token": {"id": 1, "text": " Hello", "logprob": -0.3, "special": False},
            "generated_text": None,
            "details": None,
        },
        {
            "token": {"id": 2, "text": " world", "logprob": -0.2, "special": False},
            "generated_text": " Hello world",
            "details": {"finish_reason": "length", "generated_tokens": 2, "seed": None},
        },
    ]
    wire = b"".join(b"data:" + json.dumps(e).encode() + b"\n\n" for e in events)
    fake.queue(
        stream_response(
            [payload_part(wire[:30]), payload_part(wire[30:90]), payload_part(wire[90:])]
        )
    )
    deltas = [d async for d in backend.stream(GenerationRequest(prompt="Say", params=PARAMS))]
    assert [d.text for d in deltas] == [" Hello", " world", ""]
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens == 2
    sent = fake.requests[0]
    assert sent.url.endswith("/invocations-response-stream")
    assert sent.json()["stream"] is True
    await backend.aclose()


TOKEN = {"token": {"id": 1, "text": " Hel", "special": False}, "details": None}


@pytest.mark.parametrize(
    ("api", "events", "error"),
    [
        # TGI's router sends an InferError as an event of its 200 stream (server.rs).
        (
            "tgi",
            [
                {
                    "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be "
                    "<= 2048. Given: 2100 `inputs` tokens and 20 `max_new_tokens`",
                    "error_type": "validation",
                }
            ],
            ContextWindowExceeded,
        ),
        (
            "tgi",
            [TOKEN, {"error": "CUDA out of memory", "error_type": "generation"}],
            BackendUnavailable,
        ),
        ("tgi", [{"error": "Model is overloaded", "error_type": "overloaded"}], RateLimited),
        # vLLM / LMI: OpenAI's error object as a data event.
        (
            "openai",
            [
                {
                    "error": {
                        "message": "temperature must be non-negative",
                        "type": "BadRequestError",
                        "code": 400,
                    }
                }
            ],
            InvalidRequest,
        ),
    ],
)
async def test_an_error_event_in_the_stream_is_raised(
    context: CloudContext, api: str, events: list[dict[str, Any]], error: type[Exception]
) -> None:
    spec = ModelSpec(id="m", backend="sagemaker", endpoint="e", options={"api": api})
    backend, fake = await loaded(spec, context)
    wire = b"".join(b"data:" + json.dumps(e).encode() + b"\n\n" for e in events)
    fake.queue(*[stream_response([payload_part(wire)])] * 3)  # retried when retryable
    seen: list[str] = []
    with pytest.raises(error, match="stream"):
        async for delta in backend.stream(GenerationRequest(prompt="Say", params=PARAMS)):
            seen.append(delta.text)
    assert "".join(seen) in ("", " Hel")  # never an answer ended as if complete
    await backend.aclose()


async def test_openai_messages_container(context: CloudContext) -> None:
    spec = ModelSpec(
        id="llama3-lmi",
        backend="sagemaker",
        endpoint="lmi-endpoint",
        options={"api": "openai", "model": "tgi"},
    )
    backend, fake = await loaded(spec, context)
    fake.queue(
        json_response(
            {
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hi"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            }
        )
    )
    completion = await backend.generate_one(GenerationRequest.chat("Hello", params=PARAMS))
    assert (completion.text, completion.usage.prompt_tokens) == ("Hi", 5)
    assert fake.requests[0].json()["messages"] == [{"role": "user", "content": "Hello"}]
    await backend.aclose()


def model_error(status: int, message: str) -> Any:
    return aws_error(
        "ModelError",
        f'Received client error ({status}) from primary with message "{message}"',
        424,
        OriginalStatusCode=status,
        OriginalMessage=message,
        LogStreamArn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
    )


async def test_model_errors_map_by_original_status(context: CloudContext) -> None:
    spec = ModelSpec(id="gpt-j-6b", backend="sagemaker", endpoint="textnlp-multi-model")
    backend, fake = await loaded(spec, context)
    fake.queue(
        model_error(
            422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048"
        )
    )
    with pytest.raises(ContextWindowExceeded):
        await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    fake.queue(*[model_error(500, "CUDA out of memory")] * 3)
    with pytest.raises(BackendUnavailable):
        await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    assert len(fake.requests) == 4  # 1 (not retried) + 3 attempts
    await backend.aclose()


async def test_a_missing_endpoint_is_the_deployments_fault_and_keeps_the_account_private(
    context: CloudContext,
) -> None:
    # InvokeEndpoint's answer for an endpoint that does not exist (or was deleted).
    spec = ModelSpec(id="gpt-j-6b", backend="sagemaker", endpoint="textnlp-multi-model")
    backend, fake = await loaded(spec, context)
    missing = "Endpoint textnlp-multi-model of account 123456789012 not found."
    fake.queue(*[aws_error("ValidationError", missing)] * 3)
    with pytest.raises(BackendUnavailable) as raised:
        await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    assert not raised.value.user_error
    # The deployment's failure: the user reads that, the log the text (without the account).
    assert "123456789012" not in str(raised.value) and "not found" not in str(raised.value)
    await backend.aclose()


async def test_a_multi_model_endpoint_runs_the_target_model(context: CloudContext) -> None:
    spec = ModelSpec(
        id="reviews-small",
        backend="sagemaker",
        endpoint="textnlp-small-models",
        options={"target_model": "reviews-small.tar.gz"},
    )
    backend, fake = await loaded(spec, context)
    answer = [
        {
            "generated_text": " Sturdy.",
            "details": {"finish_reason": "eos_token", "generated_tokens": 2},
        }
    ]
    fake.queue(json_response(answer), json_response(answer))
    completion = await backend.generate_one(GenerationRequest(prompt="A kettle", params=PARAMS))
    assert completion.text == " Sturdy."
    sent = fake.requests[0]
    assert sent.url.endswith("/endpoints/textnlp-small-models/invocations")
    assert sent.headers["X-Amzn-SageMaker-Target-Model"] == "reviews-small.tar.gz"
    # Response streams take no TargetModel: the stream is the whole answer, in one piece.
    assert not SageMakerBackend.streams(spec)
    deltas = [d async for d in backend.stream(GenerationRequest(prompt="A lamp", params=PARAMS))]
    assert "".join(d.text for d in deltas) == " Sturdy." and deltas[-1].finish_reason == "stop"
    streamed = fake.requests[1]
    assert streamed.url.endswith("/invocations")
    assert streamed.headers["X-Amzn-SageMaker-Target-Model"] == "reviews-small.tar.gz"
    await backend.aclose()


#: A SageMaker Runtime VPC interface endpoint: where the deployment's network is, not the user's.
VPC_ENDPOINT = (
    "https://vpce-0a1b2c3d4e5f67890-abcd1234.runtime.sagemaker.us-east-1.vpce.amazonaws.com"
)


@pytest.mark.parametrize(
    ("unreachable", "error"),
    [
        (Unreachable(EndpointConnectionError), BackendUnavailable),
        (Unreachable(ConnectTimeoutError), Timeout),
        (Unreachable(ReadTimeoutError), Timeout),
        (Unreachable(ConnectionClosedError), BackendUnavailable),
        # urllib3's words, which botocore's HTTP layer passes on: a host and port.
        (
            Unreachable(
                lambda endpoint_url: HTTPClientError(
                    error=f"HTTPSConnectionPool(host='10.0.3.7', port=443): {endpoint_url}"
                )
            ),
            BackendUnavailable,
        ),
    ],
)
async def test_a_network_failure_tells_callers_no_endpoint_address(
    context: CloudContext,
    caplog: pytest.LogCaptureFixture,
    unreachable: Unreachable,
    error: type[BackendError],
) -> None:
    spec = ModelSpec(
        id="gpt-j-6b",
        backend="sagemaker",
        endpoint="textnlp-multi-model",
        options={"endpoint_url": VPC_ENDPOINT},
    )
    backend, fake = await loaded(spec, context)
    fake.queue(*[unreachable] * 3)
    with pytest.raises(error) as raised:
        await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    # What an API caller and a job's owner read.
    told = [str(raised.value), str(public_body(raised.value)), public_reason(raised.value)]
    for text in told:
        assert "vpce-" not in text and "10.0.3.7" not in text, text
    assert "<endpoint>" in str(raised.value)
    assert "vpce-0a1b2c3d4e5f67890" in caplog.text  # the operators read where
    await backend.aclose()


def not_json(body: bytes, content_type: str) -> Canned:
    return Canned(200, body, {"Content-Type": content_type})


@pytest.mark.parametrize(
    ("api", "answer", "said"),
    [
        # A load balancer's or proxy's page in front of the container; a container's plain text.
        ("tgi", not_json(b"<html><body>502 Bad Gateway</body></html>", "text/html"), "not JSON"),
        ("tgi", not_json(b"upstream request timeout", "text/plain"), "not JSON"),
        ("openai", not_json(b"\xff\xfe not utf-8", "application/octet-stream"), "not JSON"),
        # JSON of another shape than the container's.
        ("tgi", json_response([{"generated_text": None}]), "unexpected body"),
        ("tgi", json_response({"generated_text": 42}), "unexpected body"),
        ("openai", json_response({"choices": [{"message": {"content": ["a"]}}]}), "unexpected"),
    ],
)
async def test_an_answer_not_of_the_containers_shape_is_backend_unavailable(
    context: CloudContext, api: str, answer: Canned, said: str
) -> None:
    spec = ModelSpec(id="m", backend="sagemaker", endpoint="e", options={"api": api})
    backend, fake = await loaded(spec, context)
    fake.queue(*[answer] * 3)  # retried: another answer may be whole
    with pytest.raises(BackendUnavailable, match=said) as raised:
        await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    assert (raised.value.backend, raised.value.model) == ("sagemaker", "m")
    await backend.aclose()


async def test_a_token_count_that_is_no_number_is_estimated(context: CloudContext) -> None:
    spec = ModelSpec(id="m", backend="sagemaker", endpoint="e")
    backend, fake = await loaded(spec, context)
    fake.queue(
        json_response([{"generated_text": " a fox", "details": {"generated_tokens": "many"}}])
    )
    completion = await backend.generate_one(GenerationRequest(prompt="x", params=PARAMS))
    assert (completion.text, completion.usage.completion_tokens) == (" a fox", 2)
    await backend.aclose()


@pytest.mark.parametrize(
    ("api", "wire"),
    [
        ("tgi", b'data:{"token": {"id": 1, "text": " Hel"}}\n\ndata:<html>502 Bad Gateway\n\n'),
        ("tgi", b'data:{"token": " Hel"}\n\n'),
        ("tgi", b'data:{"token": {"text": " Hel"}, "details": "done"}\n\n'),
        ("openai", b'data:{"choices": [{"delta": "Hel"}]}\n\n'),
        ("tgi", b'data:{"token": {"text": " Hel"}, "details": {"finish_reason": "length"}}\n{'),
    ],
)
async def test_a_stream_event_not_of_the_containers_shape_is_backend_unavailable(
    context: CloudContext, api: str, wire: bytes
) -> None:
    spec = ModelSpec(id="m", backend="sagemaker", endpoint="e", options={"api": api})
    backend, fake = await loaded(spec, context)
    fake.queue(*[stream_response([payload_part(wire)])] * 3)
    with pytest.raises(BackendUnavailable, match="unexpected event"):
        async for _ in backend.stream(GenerationRequest(prompt="Say", params=PARAMS)):
            pass
    await backend.aclose()
