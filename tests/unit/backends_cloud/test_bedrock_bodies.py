"""Bedrock request/response translation, on bodies from the AWS documentation
("Inference request parameters and response fields for foundation models", Converse API
reference)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from textnlp.backends.options import BedrockOptions
from textnlp.backends.providers import (
    bedrock_ai21,
    bedrock_anthropic,
    bedrock_converse,
    bedrock_meta,
    bedrock_mistral,
    bedrock_titan,
)
from textnlp.backends.providers.bedrock_models import (
    AI21_J2,
    TITAN,
    bedrock_profile,
    provider_of,
)
from textnlp.backends.providers.common import Chunk
from textnlp.domain import ChatMessage, GenerationParams, GenerationRequest
from textnlp.errors import InvalidRequest

PARAMS = GenerationParams(max_tokens=4096, temperature=0.7, top_p=0.9, stop=("\n\nHuman:",))
CHAT = GenerationRequest.chat("Write a product review.", system="You are terse.", params=PARAMS)


def test_converse_request_body() -> None:
    body = bedrock_converse.request_body("anthropic.claude-v2", CHAT)
    assert body == {
        "modelId": "anthropic.claude-v2",
        "messages": [{"role": "user", "content": [{"text": "Write a product review."}]}],
        "system": [{"text": "You are terse."}],
        "inferenceConfig": {
            "maxTokens": 4096,
            "temperature": 0.7,
            "topP": 0.9,
            "stopSequences": ["\n\nHuman:"],
        },
    }


def test_converse_folds_system_for_models_without_it() -> None:
    body = bedrock_converse.request_body("amazon.titan-text-express-v1", CHAT, system_prompts=False)
    assert "system" not in body
    assert body["messages"][0]["content"][0]["text"] == "You are terse.\n\nWrite a product review."


def test_converse_merges_turns_to_alternate() -> None:
    request = GenerationRequest(
        messages=(
            ChatMessage(role="assistant", content="Hello."),
            ChatMessage(role="user", content="a"),
            ChatMessage(role="user", content="b"),
        )
    )
    roles = [m["role"] for m in bedrock_converse.request_body("m", request)["messages"]]
    assert roles == ["user", "assistant", "user"]


def test_converse_response() -> None:
    # Converse API reference, response syntax.
    answer: dict[str, Any] = {
        "output": {
            "message": {"role": "assistant", "content": [{"text": "Great blender, loud motor."}]}
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 21, "outputTokens": 7, "totalTokens": 28},
        "metrics": {"latencyMs": 431},
    }
    parsed = bedrock_converse.parse_response(answer)
    assert parsed.text == "Great blender, loud motor."
    assert parsed.finish_reason == "stop"
    assert (parsed.prompt_tokens, parsed.completion_tokens) == (21, 7)
    answer["stopReason"] = "max_tokens"
    assert bedrock_converse.parse_response(answer).finish_reason == "length"


def test_converse_stream_events() -> None:
    events: list[dict[str, Any]] = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "max_tokens"}},
        {
            "metadata": {
                "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7},
                "metrics": {"latencyMs": 80},
            }
        },
    ]
    chunks = [c for e in events if (c := bedrock_converse.parse_event(e)) is not None]
    assert "".join(c.text for c in chunks) == "Hello"
    assert chunks[-2].finish_reason == "length"
    assert (chunks[-1].prompt_tokens, chunks[-1].completion_tokens) == (5, 2)


def test_anthropic_messages_body_and_response() -> None:
    body = bedrock_anthropic.messages_body(CHAT)
    assert body == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 4096,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Write a product review."}]}
        ],
        "temperature": 0.7,
        "stop_sequences": ["\n\nHuman:"],
    }
    # "Anthropic Claude Messages API", response example.
    answer: dict[str, Any] = {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-haiku-20240307",
        "content": [{"type": "text", "text": "Solid and quiet."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 18, "output_tokens": 5},
    }
    parsed = bedrock_anthropic.parse_messages_response(answer)
    assert (parsed.text, parsed.finish_reason, parsed.prompt_tokens, parsed.completion_tokens) == (
        "Solid and quiet.",
        "stop",
        18,
        5,
    )


def test_anthropic_messages_stream_events() -> None:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 9},
        },
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": 12,
                "outputTokenCount": 9,
                "invocationLatency": 500,
                "firstByteLatency": 200,
            },
        },
    ]
    chunks = [c for e in events if (c := bedrock_anthropic.parse_messages_event(e))]
    assert "".join(c.text for c in chunks) == "Hi"
    assert any(c.finish_reason == "length" for c in chunks)
    assert chunks[0].prompt_tokens == 12
    assert chunks[-1] == Chunk(prompt_tokens=12, completion_tokens=9)


def test_anthropic_text_completion() -> None:
    body = bedrock_anthropic.text_completion_body(CHAT)
    assert body["prompt"] == "You are terse.\n\nHuman: Write a product review.\n\nAssistant:"
    assert body["max_tokens_to_sample"] == 4096
    assert body["stop_sequences"] == ["\n\nHuman:"]
    # "Anthropic Claude Text Completions API", response.
    parsed = bedrock_anthropic.parse_text_completion(
        {"completion": " Sturdy.", "stop_reason": "stop_sequence", "stop": "\n\nHuman:"}
    )
    assert (parsed.text, parsed.finish_reason) == (" Sturdy.", "stop")
    chunk = bedrock_anthropic.parse_text_completion_chunk(
        {
            "completion": "",
            "stop_reason": "max_tokens",
            "stop": None,
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 20, "outputTokenCount": 4096},
        }
    )
    assert chunk == Chunk("", "length", 20, 4096)


def test_ai21_jurassic() -> None:
    body = bedrock_ai21.request_body(GenerationRequest(prompt="Tagline for a cafe:", params=PARAMS))
    assert body == {
        "prompt": "Tagline for a cafe:",
        "maxTokens": 4096,
        "temperature": 0.7,
        "topP": 0.9,
        "stopSequences": ["\n\nHuman:"],
    }
    # "AI21 Labs Jurassic-2 models", response.
    answer: dict[str, Any] = {
        "id": 1234,
        "prompt": {"text": "Tagline for a cafe:", "tokens": [{}, {}, {}, {}, {}]},
        "completions": [
            {
                "data": {"text": "\nBrewed for you.", "tokens": [{}, {}, {}, {}]},
                "finishReason": {"reason": "endoftext"},
            }
        ],
    }
    parsed = bedrock_ai21.parse_response(answer)
    assert (parsed.text, parsed.finish_reason, parsed.prompt_tokens, parsed.completion_tokens) == (
        "\nBrewed for you.",
        "stop",
        5,
        4,
    )
    answer["completions"][0]["finishReason"] = {"reason": "length", "length": 4096}
    assert bedrock_ai21.parse_response(answer).finish_reason == "length"


def test_titan_text() -> None:
    body = bedrock_titan.request_body(CHAT)
    assert body == {
        "inputText": "You are terse.\nUser: Write a product review.\nBot:",
        "textGenerationConfig": {
            "temperature": 0.7,
            "topP": 0.9,
            "maxTokenCount": 4096,
            "stopSequences": ["\n\nHuman:"],
        },
    }
    # "Amazon Titan Text models", response.
    answer: dict[str, Any] = {
        "inputTextTokenCount": 15,
        "results": [{"tokenCount": 6, "outputText": "Works well.", "completionReason": "FINISH"}],
    }
    parsed = bedrock_titan.parse_response(answer)
    assert (parsed.text, parsed.finish_reason, parsed.prompt_tokens, parsed.completion_tokens) == (
        "Works well.",
        "stop",
        15,
        6,
    )
    chunk = bedrock_titan.parse_chunk(
        {
            "outputText": " more",
            "index": 0,
            "totalOutputTextTokenCount": 4096,
            "completionReason": "LENGTH",
            "inputTextTokenCount": 15,
        }
    )
    assert chunk == Chunk(" more", "length", 15, 4096)


def test_meta_llama() -> None:
    params = GenerationParams(max_tokens=4096, temperature=0.7, top_p=0.9)  # no stop: refused
    chat = GenerationRequest.chat("Write a product review.", system="You are terse.", params=params)
    body = bedrock_meta.request_body("meta.llama3-8b-instruct-v1:0", chat)
    assert body["prompt"] == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWrite a product review.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert {k: body[k] for k in ("temperature", "top_p", "max_gen_len")} == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_gen_len": 4096,
    }
    llama2 = bedrock_meta.request_body("meta.llama2-13b-chat-v1", chat)["prompt"]
    assert (
        llama2 == "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWrite a product review. [/INST]"
    )
    # "Meta Llama models", response.
    answer: dict[str, Any] = {
        "generation": "Nice.",
        "prompt_token_count": 30,
        "generation_token_count": 3,
        "stop_reason": "stop",
    }
    parsed = bedrock_meta.parse_response(answer)
    assert (parsed.text, parsed.prompt_tokens, parsed.completion_tokens) == ("Nice.", 30, 3)


def test_mistral() -> None:
    body = bedrock_mistral.request_body(CHAT)
    assert body == {
        "prompt": "<s>[INST] You are terse.\n\nWrite a product review. [/INST]",
        "max_tokens": 4096,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["\n\nHuman:"],
    }
    # "Mistral AI text completion", response.
    parsed = bedrock_mistral.parse_response(
        {"outputs": [{"text": "Good.", "stop_reason": "length"}]}
    )
    assert (parsed.text, parsed.finish_reason) == ("Good.", "length")


def test_model_profiles() -> None:
    assert provider_of("us.anthropic.claude-3-5-sonnet-20240620-v1:0") == "anthropic"
    assert provider_of("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-8b") == "meta"
    claude = bedrock_profile("anthropic.claude-v2")
    assert (claude.api, claude.system_prompts, claude.top_p) == ("converse", True, False)
    assert claude.codec is not None
    assert "anthropic_version" in claude.codec.body(claude.model_id, CHAT)
    text = bedrock_profile("anthropic.claude-v2", BedrockOptions(anthropic_api="text")).codec
    assert text is not None and "prompt" in text.body("anthropic.claude-v2", CHAT)
    j2 = bedrock_profile("ai21.j2-ultra-v1", BedrockOptions(api="invoke"))
    assert (j2.codec, j2.streaming, j2.system_prompts) == (AI21_J2, False, False)
    titan = bedrock_profile("amazon.titan-text-express-v1")
    assert (titan.codec, titan.system_prompts, titan.streaming) == (TITAN, False, True)
    assert bedrock_profile("cohere.command-r-v1:0").codec is None


def test_meta_refuses_what_its_body_cannot_carry() -> None:
    stop = GenerationRequest.chat("hi", params=GenerationParams(stop=("\n",)))
    with pytest.raises(InvalidRequest, match="no stop sequences"):
        bedrock_meta.request_body("meta.llama3-8b-instruct-v1:0", stop)
    hot = GenerationRequest.chat("hi", params=GenerationParams(temperature=1.5))
    with pytest.raises(InvalidRequest, match="temperature of 0 to 1"):
        bedrock_meta.request_body("meta.llama3-8b-instruct-v1:0", hot)


CLAUDE_45 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def _sent_top_p(model_id: str, options: BedrockOptions) -> tuple[bool, bool]:
    """Whether the Converse body and the InvokeModel body carry top_p."""
    profile = bedrock_profile(model_id, options)
    chat = GenerationRequest.chat("Write a product review.", params=GenerationParams(top_p=0.9))
    converse = bedrock_converse.request_body(model_id, chat, top_p=profile.top_p)
    assert profile.codec is not None
    invoke = profile.codec.body(model_id, chat)
    carries = "top_p" in invoke or "topP" in invoke.get("textGenerationConfig", {})
    return "topP" in converse["inferenceConfig"], carries


def test_claude_gets_temperature_alone_unless_top_p_is_asked_for() -> None:
    # Sonnet 4.5, Haiku 4.5, Opus 4.1 and later answer ValidationException "`temperature` and
    # `top_p` cannot both be specified for this model".
    assert _sent_top_p(CLAUDE_45, BedrockOptions()) == (False, False)
    assert _sent_top_p(CLAUDE_45, BedrockOptions(anthropic_api="text")) == (False, False)
    assert _sent_top_p(CLAUDE_45, BedrockOptions(send_top_p=True)) == (True, True)
    assert _sent_top_p("amazon.titan-text-express-v1", BedrockOptions()) == (True, True)
    assert _sent_top_p("meta.llama3-8b-instruct-v1:0", BedrockOptions()) == (True, True)


@pytest.mark.parametrize(
    "body",
    [
        lambda r: bedrock_converse.request_body(CLAUDE_45, r),
        bedrock_anthropic.messages_body,
        bedrock_anthropic.text_completion_body,
        bedrock_titan.request_body,
        bedrock_ai21.request_body,
        bedrock_mistral.request_body,
        lambda r: bedrock_meta.request_body("meta.llama3-8b-instruct-v1:0", r),
    ],
)
def test_a_temperature_above_one_is_refused_by_every_bedrock_body(body: Any) -> None:
    # Bedrock's models take 0 to 1 (Converse's inferenceConfig says so): one answer for all,
    # never a quiet 1.0 in one body and a ValidationException from another.
    hot = GenerationRequest.chat("hi", params=GenerationParams(temperature=1.5))
    with pytest.raises(InvalidRequest, match="temperature of 0 to 1"):
        body(hot)
    edge = GenerationRequest.chat("hi", params=GenerationParams(temperature=1.0))
    assert "1.0" in json.dumps(body(edge))


def test_a_context_window_stop_is_a_cut_answer() -> None:
    converse = bedrock_converse.parse_response(
        {
            "output": {"message": {"content": [{"text": "Par"}]}},
            "stopReason": "model_context_window_exceeded",
        }
    )
    messages = bedrock_anthropic.parse_messages_response(
        {
            "content": [{"type": "text", "text": "Par"}],
            "stop_reason": "model_context_window_exceeded",
        }
    )
    assert (converse.finish_reason, messages.finish_reason) == ("length", "length")


def test_llama4_gets_its_own_header_tokens() -> None:
    chat = GenerationRequest.chat("Write a product review.", system="You are terse.")
    prompt = bedrock_meta.request_body("us.meta.llama4-scout-17b-instruct-v1:0", chat)["prompt"]
    assert prompt == (
        "<|begin_of_text|><|header_start|>system<|header_end|>\n\nYou are terse.<|eot|>"
        "<|header_start|>user<|header_end|>\n\nWrite a product review.<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )
