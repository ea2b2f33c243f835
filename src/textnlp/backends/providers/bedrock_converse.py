"""Bedrock Converse / ConverseStream (AWS docs: "Carry out a conversation with the Converse API
operations", API reference ``Converse`` and ``ConverseStream``).

Request: ``modelId``, ``messages`` ``[{"role", "content": [{"text"}]}]``, ``system``
``[{"text"}]`` and ``inferenceConfig`` ``{maxTokens, temperature, topP, stopSequences}``.
Response: ``output.message.content[].text``, ``stopReason`` (``end_turn``, ``max_tokens``,
``stop_sequence``, ``guardrail_intervened``, ``content_filtered``...) and ``usage``
``{inputTokens, outputTokens, totalTokens}``. The stream sends ``messageStart``,
``contentBlockDelta`` ``{delta: {text}}``, ``contentBlockStop``, ``messageStop`` ``{stopReason}``
and ``metadata`` ``{usage, metrics}`` events.
"""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.common import (
    Chunk,
    Parsed,
    alternating,
    finish_reason,
    fold_system,
    split_system,
    unit_temperature,
)
from textnlp.domain import GenerationRequest

LENGTH_REASONS = ("max_tokens", "model_context_window_exceeded")


def request_body(
    model_id: str, request: GenerationRequest, *, system_prompts: bool = True, top_p: bool = True
) -> dict[str, Any]:
    """Keyword arguments of ``converse`` / ``converse_stream`` (the JSON body plus ``modelId``).

    Models without system-prompt support (Titan, Jurassic-2, Mistral 7B...) get the system text
    before the first user turn. ``top_p`` False leaves ``topP`` out (recent Claude models
    refuse a request with both it and ``temperature``).
    """
    system, messages = split_system(request)
    if not system_prompts:
        messages, system = fold_system(system, messages), None
    params = request.params
    config: dict[str, Any] = {
        "maxTokens": params.max_tokens,
        "temperature": unit_temperature(params),
    }
    if top_p:
        config["topP"] = params.top_p
    if params.stop:
        config["stopSequences"] = list(params.stop)
    body: dict[str, Any] = {
        "modelId": model_id,
        "messages": [
            {"role": m.role, "content": [{"text": m.content}]} for m in alternating(messages)
        ],
        "inferenceConfig": config,
    }
    if system:
        body["system"] = [{"text": system}]
    return body


def parse_response(body: dict[str, Any]) -> Parsed:
    content = body.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block.get("text", "") for block in content)
    usage = body.get("usage", {})
    return Parsed(
        text=text,
        finish_reason=finish_reason(body.get("stopReason"), length=LENGTH_REASONS),
        prompt_tokens=usage.get("inputTokens"),
        completion_tokens=usage.get("outputTokens"),
    )


def parse_event(event: dict[str, Any]) -> Chunk | None:
    """One event of the ConverseStream; None for events that carry nothing for us."""
    if "contentBlockDelta" in event:
        return Chunk(text=event["contentBlockDelta"].get("delta", {}).get("text", ""))
    if "messageStop" in event:
        reason = event["messageStop"].get("stopReason")
        return Chunk(finish_reason=finish_reason(reason, length=LENGTH_REASONS))
    if "metadata" in event:
        usage = event["metadata"].get("usage", {})
        return Chunk(
            prompt_tokens=usage.get("inputTokens"), completion_tokens=usage.get("outputTokens")
        )
    return None
