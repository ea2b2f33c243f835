"""Anthropic Claude bodies: the Messages API (Bedrock InvokeModel and Anthropic's own API) and
the legacy Text Completions API of Claude 1.x/2.x on Bedrock.

AWS docs: "Anthropic Claude Messages API" and "Anthropic Claude Text Completions API"
(Inference request parameters and response fields for foundation models); Anthropic docs:
"Messages" API reference and "Streaming Messages".

Messages request: ``{"anthropic_version": "bedrock-2023-05-31", "max_tokens", "system",
"messages": [{"role", "content": [{"type": "text", "text"}]}], "temperature", "top_p",
"stop_sequences"}``; response: ``{"content": [{"type": "text", "text"}], "stop_reason":
"end_turn" | "max_tokens" | "stop_sequence", "usage": {"input_tokens", "output_tokens"}}``.
Streaming events: ``message_start`` (usage.input_tokens), ``content_block_delta``
(``delta.text``), ``message_delta`` (``delta.stop_reason``, ``usage.output_tokens``),
``message_stop``.

Text Completions request: ``{"prompt": "\\n\\nHuman: ...\\n\\nAssistant:",
"max_tokens_to_sample", "temperature", "top_p", "stop_sequences"}``; response and stream chunks:
``{"completion", "stop_reason": "stop_sequence" | "max_tokens" | null, "stop"}``.
"""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.common import (
    Chunk,
    Parsed,
    alternating,
    finish_reason,
    split_system,
    unit_temperature,
)
from textnlp.backends.providers.invocation_metrics import metrics_chunk
from textnlp.domain import GenerationRequest

BEDROCK_VERSION = "bedrock-2023-05-31"
LENGTH_REASONS = ("max_tokens", "model_context_window_exceeded")


def messages_body(
    request: GenerationRequest, *, version: str | None = BEDROCK_VERSION, top_p: bool = False
) -> dict[str, Any]:
    """A Messages API body; Anthropic's own API takes ``model`` instead of ``anthropic_version``.

    ``top_p`` is sent only when asked: recent Claude models (Sonnet 4.5, Haiku 4.5, Opus 4.1
    and later) refuse a request with both it and ``temperature``."""
    system, messages = split_system(request)
    params = request.params
    body: dict[str, Any] = {}
    if version:
        body["anthropic_version"] = version
    body["max_tokens"] = params.max_tokens
    if system:
        body["system"] = system
    body["messages"] = [
        {"role": m.role, "content": [{"type": "text", "text": m.content}]}
        for m in alternating(messages)
    ]
    body["temperature"] = unit_temperature(params)
    if top_p:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    return body


def parse_messages_response(body: dict[str, Any]) -> Parsed:
    text = "".join(b.get("text", "") for b in body.get("content", []) if b.get("type") == "text")
    usage = body.get("usage", {})
    return Parsed(
        text=text,
        finish_reason=finish_reason(body.get("stop_reason"), length=LENGTH_REASONS),
        prompt_tokens=usage.get("input_tokens"),
        completion_tokens=usage.get("output_tokens"),
    )


def parse_messages_event(event: dict[str, Any]) -> Chunk | None:
    kind = event.get("type")
    if kind == "content_block_delta":
        return Chunk(text=event.get("delta", {}).get("text", ""))
    if kind == "message_start":
        usage = event.get("message", {}).get("usage", {})
        return Chunk(prompt_tokens=usage.get("input_tokens"))
    if kind == "message_delta":
        reason = event.get("delta", {}).get("stop_reason")
        return Chunk(
            finish_reason=finish_reason(reason, length=LENGTH_REASONS) if reason else None,
            completion_tokens=event.get("usage", {}).get("output_tokens"),
        )
    return metrics_chunk(event)


def text_completion_prompt(request: GenerationRequest) -> str:
    """The ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` prompt Claude 2 requires."""
    system, messages = split_system(request)
    parts = [system] if system else []
    names = {"user": "Human", "assistant": "Assistant"}
    parts += [f"\n\n{names[m.role]}: {m.content}" for m in alternating(messages)]
    return "".join(parts) + "\n\nAssistant:"


def text_completion_body(request: GenerationRequest, *, top_p: bool = False) -> dict[str, Any]:
    params = request.params
    body: dict[str, Any] = {
        "prompt": text_completion_prompt(request),
        "max_tokens_to_sample": params.max_tokens,
        "temperature": unit_temperature(params),
    }
    if top_p:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    return body


def parse_text_completion(body: dict[str, Any]) -> Parsed:
    return Parsed(
        text=body.get("completion", ""),
        finish_reason=finish_reason(body.get("stop_reason"), length=LENGTH_REASONS),
    )


def parse_text_completion_chunk(chunk: dict[str, Any]) -> Chunk | None:
    reason = chunk.get("stop_reason")
    metrics = metrics_chunk(chunk)
    return Chunk(
        text=chunk.get("completion", ""),
        finish_reason=finish_reason(reason, length=LENGTH_REASONS) if reason else None,
        prompt_tokens=metrics.prompt_tokens if metrics else None,
        completion_tokens=metrics.completion_tokens if metrics else None,
    )
