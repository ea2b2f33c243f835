"""SageMaker TGI and OpenAI translation, on bodies from the Hugging Face TGI / SageMaker and
OpenAI API documentation."""

from __future__ import annotations

import json

from textnlp.backends.providers import openai as openai_body
from textnlp.backends.providers import sagemaker_tgi
from textnlp.backends.providers.common import Chunk
from textnlp.backends.providers.http_errors import error_class
from textnlp.backends.providers.openai import VllmExtras
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import (
    AuthFailed,
    BackendUnavailable,
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
)

PARAMS = GenerationParams(max_tokens=64, temperature=0.7, top_p=0.9, seed=7, stop=("\n",))


def test_tgi_request_body() -> None:
    body = sagemaker_tgi.request_body(GenerationRequest(prompt="Once upon a time", params=PARAMS))
    assert body == {
        "inputs": "Once upon a time",
        "parameters": {
            "max_new_tokens": 64,
            "details": True,
            "return_full_text": False,
            "do_sample": True,
            "temperature": 0.7,
            "top_p": 0.9,
            "stop": ["\n"],
            "seed": 7,
        },
    }
    greedy = GenerationParams(max_tokens=8, temperature=0.0, top_p=1.0)
    parameters = sagemaker_tgi.request_body(GenerationRequest(prompt="x", params=greedy))[
        "parameters"
    ]
    assert parameters["do_sample"] is False
    assert "temperature" not in parameters and "top_p" not in parameters
    assert sagemaker_tgi.request_body(GenerationRequest(prompt="x"), stream=True)["stream"] is True


def test_tgi_response() -> None:
    answer = [
        {
            "generated_text": " there was a fox.",
            "details": {
                "finish_reason": "eos_token",
                "generated_tokens": 6,
                "seed": 7,
                "prefill": [],
                "tokens": [],
            },
        }
    ]
    parsed = sagemaker_tgi.parse_response(answer)
    assert (parsed.text, parsed.finish_reason, parsed.completion_tokens) == (
        " there was a fox.",
        "stop",
        6,
    )
    assert parsed.prompt_tokens is None
    lmi = {"generated_text": "abc", "details": {"finish_reason": "length", "generated_tokens": 64}}
    assert sagemaker_tgi.parse_response(lmi).finish_reason == "length"


def test_tgi_stream_lines_split_anywhere() -> None:
    events = [
        {
            "token": {"id": 1, "text": " there", "logprob": -0.2, "special": False},
            "generated_text": None,
            "details": None,
        },
        {
            "token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": True},
            "generated_text": " there",
            "details": {"finish_reason": "eos_token", "generated_tokens": 2, "seed": None},
        },
    ]
    wire = b"".join(b"data:" + json.dumps(e).encode() + b"\n\n" for e in events)
    lines = sagemaker_tgi.EventLines()
    decoded = []
    for i in range(0, len(wire), 7):  # payload parts cut at arbitrary bytes
        decoded += lines.feed(wire[i : i + 7])
    decoded += lines.flush()
    chunks = [sagemaker_tgi.parse_event(e) for e in decoded]
    assert chunks == [Chunk(" there"), Chunk("", "stop", None, 2)]
    # LMI's jsonlines stream has no "data:" prefix.
    assert sagemaker_tgi.EventLines().feed(json.dumps(events[0]).encode() + b"\n") == [events[0]]


def test_openai_chat_body_and_response() -> None:
    request = GenerationRequest.chat("Hello", system="Be brief.", params=PARAMS)
    assert openai_body.chat_body("gpt-4o-mini", request) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "max_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n"],
    }
    # "Create chat completion", response example.
    answer = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1677652288,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "\n\nHello there, how may I assist you today?",
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    }
    parsed = openai_body.parse_response(answer)
    assert parsed.text.endswith("today?")
    assert (parsed.finish_reason, parsed.prompt_tokens, parsed.completion_tokens) == ("stop", 9, 12)


def test_openai_completion_and_chunks() -> None:
    request = GenerationRequest(prompt="Say this is a test", params=PARAMS)
    assert openai_body.completion_body("m", request)["prompt"] == "Say this is a test"
    answer = {
        "object": "text_completion",
        "choices": [
            {
                "text": "\n\nThis is indeed a test",
                "index": 0,
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    assert openai_body.parse_response(answer).finish_reason == "length"
    delta = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
    }
    assert openai_body.parse_chunk(delta) == Chunk("Hi")
    role_only = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    assert openai_body.parse_chunk(role_only) is None
    usage = {
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    assert openai_body.parse_chunk(usage) == Chunk("", None, 3, 2)


def test_vllm_extras_only_for_vllm() -> None:
    request = GenerationRequest(prompt="x", ignore_eos=True)
    extras = VllmExtras(guided_json={"type": "object"}, best_of=3)
    assert openai_body.extra_body(request, vllm=False, extras=extras) == {}
    assert openai_body.extra_body(request, vllm=True, extras=extras) == {
        "guided_json": {"type": "object"},
        "best_of": 3,
        "ignore_eos": True,
    }


def test_http_status_classes() -> None:
    assert error_class(429) is RateLimited
    assert error_class(401) is AuthFailed
    assert error_class(503) is BackendUnavailable
    assert (
        error_class(400, "This model's maximum context length is 4096 tokens")
        is ContextWindowExceeded
    )
    assert error_class(400, "temperature must be positive") is InvalidRequest
