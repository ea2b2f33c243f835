"""Provider batch translation on the providers' documented bodies: request lines, output
lines, error lines (OpenAI Batch API, Anthropic Message Batches, Bedrock batch inference,
SageMaker batch transform), the split within limits, and the batch price."""

from __future__ import annotations

import json

import pytest

from textnlp.backends.batch import anthropic_lines, bedrock_lines, openai_lines, sagemaker_lines
from textnlp.backends.batch.base import (
    BatchError,
    BatchLimits,
    BatchLine,
    BatchProvider,
    BatchResults,
    BatchState,
    custom_id,
)
from textnlp.backends.pricing import BATCH_DISCOUNT, Price, PriceTable
from textnlp.backends.providers import bedrock_anthropic, bedrock_titan, sagemaker_tgi
from textnlp.backends.providers import openai as openai_body
from textnlp.backends.providers.common import Parsed
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationRequest, Usage
from textnlp.errors import InvalidParameter

# OpenAI API reference, "The request output object" (a chat completion inside).
OPENAI_OUTPUT = {
    "id": "batch_req_wnaDys",
    "custom_id": "record-2",
    "response": {
        "status_code": 200,
        "request_id": "req_c187b3",
        "body": {
            "id": "chatcmpl-9758Iw",
            "object": "chat.completion",
            "created": 1711475054,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "2 + 2 equals 4."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 24, "completion_tokens": 15, "total_tokens": 39},
            "system_fingerprint": "fp_3ba",
        },
    },
    "error": None,
}
OPENAI_ERROR = {
    "id": "batch_req_456",
    "custom_id": "record-1",
    "response": None,
    "error": {
        "code": "batch_expired",
        "message": "This request could not be executed before the completion window expired.",
    },
}
OPENAI_HTTP_ERROR = {
    "id": "batch_req_789",
    "custom_id": "record-3",
    "response": {
        "status_code": 400,
        "request_id": "req_1",
        "body": {
            "error": {
                "message": "Invalid 'max_tokens'",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": None,
            }
        },
    },
    "error": None,
}

# Anthropic API reference, "Retrieve Message Batch results".
ANTHROPIC_SUCCEEDED = {
    "custom_id": "record-7",
    "result": {
        "type": "succeeded",
        "message": {
            "id": "msg_014VwiXbi91y3JMjcpyGBHX5",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-sonnet-20240620",
            "content": [{"type": "text", "text": "Hello again! It's nice to see you."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 36},
        },
    },
}
ANTHROPIC_ERRORED = {
    "custom_id": "record-8",
    "result": {
        "type": "errored",
        "error": {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
        },
    },
}

# AWS docs, "View the results of a batch inference job" (an Anthropic Claude record, and an
# error record).
BEDROCK_OUTPUT = {
    "recordId": "R0000000004",
    "modelInput": {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Summarize"}]}],
    },
    "modelOutput": {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-haiku-20240307",
        "content": [{"type": "text", "text": "A short summary."}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 12, "output_tokens": 4},
    },
}
BEDROCK_ERROR = {
    "recordId": "R0000000005",
    "modelInput": {"inputText": "x"},
    "error": {"errorCode": 400, "errorMessage": "Malformed input request"},
}
# A Titan Text record's modelOutput (Titan's InvokeModel answer).
BEDROCK_TITAN = {
    "recordId": "R0000000006",
    "modelInput": {"inputText": "Hi"},
    "modelOutput": {
        "inputTextTokenCount": 3,
        "results": [{"tokenCount": 5, "outputText": "Hello there", "completionReason": "FINISH"}],
    },
}


def test_openai_request_line_is_a_batch_input_object() -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    line = openai_lines.request_line(12, body, openai_lines.CHAT_URL)
    assert line == {
        "custom_id": "record-12",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
    }


def test_openai_output_line_and_error_lines() -> None:
    index, parsed = openai_lines.parse_output_line(OPENAI_OUTPUT)
    assert index == 2
    assert parsed == Parsed("2 + 2 equals 4.", "stop", 24, 15)
    index, error = openai_lines.parse_output_line(OPENAI_ERROR)
    assert index == 1 and isinstance(error, BatchError) and error.code == "batch_expired"
    index, error = openai_lines.parse_output_line(OPENAI_HTTP_ERROR)
    assert index == 3 and isinstance(error, BatchError)
    assert error.code == "invalid_request_error" and "max_tokens" in error.message
    text = "\n".join(json.dumps(x) for x in (OPENAI_OUTPUT, OPENAI_ERROR)) + "\n"
    assert [i for i, _ in openai_lines.parse_file(text)] == [2, 1]
    assert openai_lines.parse_output_line({**OPENAI_OUTPUT, "custom_id": "theirs"})[0] is None
    # A 200 whose body has no choice fails its record alone (it was an "ok" record of "").
    odd = {**OPENAI_OUTPUT, "response": {"status_code": 200, "body": {"foo": 1}}}
    index, error = openai_lines.parse_output_line(odd)
    assert index == 2 and isinstance(error, BatchError) and error.code == "unexpected_body"


def test_anthropic_request_entry_and_results() -> None:
    request = GenerationRequest.chat("Hello, world", system="Be brief")
    params = {
        "model": "claude-sonnet-4-5",
        **bedrock_anthropic.messages_body(request, version=None),
    }
    entry = anthropic_lines.request_entry(7, params)
    assert entry["custom_id"] == "record-7"
    assert entry["params"]["system"] == "Be brief"
    assert entry["params"]["messages"][0]["content"][0]["text"] == "Hello, world"
    assert "anthropic_version" not in entry["params"]
    index, parsed = anthropic_lines.parse_result(ANTHROPIC_SUCCEEDED)
    assert index == 7 and parsed == Parsed("Hello again! It's nice to see you.", "stop", 11, 36)
    index, error = anthropic_lines.parse_result(ANTHROPIC_ERRORED)
    assert index == 8 and error == BatchError("invalid_request_error", "max_tokens: Field required")
    for kind in ("expired", "canceled"):
        index, error = anthropic_lines.parse_result(
            {"custom_id": "record-9", "result": {"type": kind}}
        )
        assert index == 9 and isinstance(error, BatchError) and error.code == kind


def test_bedrock_record_lines() -> None:
    assert bedrock_lines.record_id(4) == "R0000000004" and len(bedrock_lines.record_id(4)) == 11
    line = bedrock_lines.input_line(4, {"inputText": "Hi"})
    assert line == {"recordId": "R0000000004", "modelInput": {"inputText": "Hi"}}
    index, parsed = bedrock_lines.parse_output_line(
        BEDROCK_OUTPUT, bedrock_anthropic.parse_messages_response
    )
    assert index == 4 and parsed == Parsed("A short summary.", "length", 12, 4)
    index, error = bedrock_lines.parse_output_line(BEDROCK_ERROR, bedrock_titan.parse_response)
    assert index == 5 and error == BatchError("400", "Malformed input request")
    index, parsed = bedrock_lines.parse_output_line(BEDROCK_TITAN, bedrock_titan.parse_response)
    assert index == 6 and isinstance(parsed, Parsed) and parsed.text == "Hello there"
    assert bedrock_lines.index_of("CALL0000001") is None


def test_anthropic_results_are_read_under_their_parts_prefix() -> None:
    prefix = anthropic_lines.part_prefix("9f2c", 1)
    entry = anthropic_lines.tagged(anthropic_lines.request_entry(7, {"model": "m"}), prefix, 7)
    assert entry == {"custom_id": "j9f2cp1-7", "params": {"model": "m"}}
    mine = {**ANTHROPIC_SUCCEEDED, "custom_id": "j9f2cp1-7"}
    assert anthropic_lines.parse_result(mine, prefix)[0] == 7
    # Another part's (or another client's) answer has no index here.
    assert anthropic_lines.parse_result({**mine, "custom_id": "j9f2cp2-7"}, prefix)[0] is None
    assert anthropic_lines.parse_result(ANTHROPIC_SUCCEEDED, prefix)[0] is None


# A TGI ``/generate`` answer (Hugging Face LLM containers on SageMaker) joined to its input
# record by batch transform (AWS docs, "Associate Prediction Results with Input Records":
# ``JoinSource: Input`` adds ``SageMakerOutput``; the output filter keeps id and output).
SAGEMAKER_OUTPUT = {
    "id": "record-4",
    "SageMakerOutput": [
        {
            "generated_text": " a quick brown fox.",
            "details": {"finish_reason": "length", "generated_tokens": 5, "seed": 42},
        }
    ],
}
# An OpenAI-style container (LMI / vLLM with the messages API) answers a chat completion.
SAGEMAKER_OPENAI_OUTPUT = {
    "id": "record-5",
    "SageMakerOutput": json.loads(json.dumps(OPENAI_OUTPUT))["response"]["body"],
}


def test_sagemaker_transform_lines() -> None:
    request = GenerationRequest(prompt="Once upon a time")
    body = sagemaker_tgi.request_body(request)
    assert sagemaker_lines.input_line(4, body) == {"id": "record-4", "body": body}
    index, parsed = sagemaker_lines.parse_output_line(
        SAGEMAKER_OUTPUT, sagemaker_tgi.parse_response
    )
    assert index == 4 and parsed == Parsed(" a quick brown fox.", "length", None, 5)
    index, parsed = sagemaker_lines.parse_output_line(
        SAGEMAKER_OPENAI_OUTPUT, openai_body.parse_response
    )
    assert index == 5 and isinstance(parsed, Parsed) and parsed.text == "2 + 2 equals 4."
    index, error = sagemaker_lines.parse_output_line(
        {"id": "record-6", "SageMakerOutput": "oops"}, sagemaker_tgi.parse_response
    )
    assert index == 6 and isinstance(error, BatchError) and error.code == "unexpected_output"
    tgi_error = {"error": "Input validation error: `inputs` must have less than 2048 tokens"}
    index, error = sagemaker_lines.parse_output_line(
        {"id": "record-8", "SageMakerOutput": {**tgi_error, "error_type": "validation"}},
        sagemaker_tgi.parse_response,
    )
    assert index == 8 and error == BatchError("model_error", tgi_error["error"])
    index, error = sagemaker_lines.parse_output_line(
        {"id": "record-7"}, sagemaker_tgi.parse_response
    )
    assert index == 7 and isinstance(error, BatchError) and error.code == "no_output"
    text = json.dumps(SAGEMAKER_OUTPUT) + "\n\n{broken\n" + json.dumps([1]) + "\n"
    assert [i for i, _ in sagemaker_lines.parse_file(text, sagemaker_tgi.parse_response)] == [
        4,
        None,
    ]


class _Lines(BatchProvider):
    name = "test"
    limits = BatchLimits(max_requests=3, max_bytes=40, min_requests=2)

    def encode(self, index: int, request: GenerationRequest) -> bytes:
        return json.dumps({"id": custom_id(index), "p": request.as_text()}).encode()

    async def submit(self, job_id: str, part: int, lines: object) -> str:
        raise NotImplementedError

    async def find(self, job_id: str, part: int, lines: object, since: float) -> str | None:
        raise NotImplementedError

    async def poll(self, batch_id: str) -> BatchState:
        raise NotImplementedError

    async def results(
        self, batch_id: str, requests: object, *, job_id: str, part: int
    ) -> BatchResults:
        raise NotImplementedError

    async def cancel(self, batch_id: str) -> None:
        raise NotImplementedError


SPEC = ModelSpec(id="m", backend="openai", endpoint="gpt-x")


def test_split_keeps_each_part_within_count_and_bytes() -> None:
    provider = _Lines(SPEC, PriceTable())
    lines = [BatchLine(i, GenerationRequest(prompt="p"), b"x" * 9) for i in range(8)]
    parts = provider.split(lines)
    # 3 per part by count (30 bytes with newlines); the last part of 2 meets the minimum.
    assert [[x.index for x in p] for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    big = [BatchLine(i, GenerationRequest(prompt="p"), b"x" * 15) for i in range(5)]
    # 2 lines of 16 bytes fill 32 of 40; the fifth line alone is under the minimum: online.
    assert [[x.index for x in p] for p in provider.split(big)] == [[0, 1], [2, 3]]
    with pytest.raises(InvalidParameter, match="larger than"):
        provider.split([BatchLine(0, GenerationRequest(prompt="p"), b"x" * 50)])


def test_batch_price_is_half_unless_the_table_says_otherwise() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=1000)
    table = PriceTable({"gpt-x": Price(1.0, 2.0)})
    assert table.cost(SPEC, usage) == 3.0
    assert table.batch_cost(SPEC, usage) == pytest.approx(3.0 * BATCH_DISCOUNT)
    own = PriceTable({"gpt-x": Price(1.0, 2.0, batch_input_per_1k=0.25, batch_output_per_1k=1.0)})
    assert own.batch_cost(SPEC, usage) == pytest.approx(1.25)
    provider = _Lines(SPEC, table)
    completion = provider.completion(
        Parsed("hi", "stop", 1000, 1000), GenerationRequest(prompt="x")
    )
    assert completion.usage.cost_usd == pytest.approx(1.5) and completion.model == "m"
    estimated = provider.completion(Parsed("abcdefgh", "stop"), GenerationRequest(prompt="abcd"))
    assert (estimated.usage.prompt_tokens, estimated.usage.completion_tokens) == (1, 2)
