"""Mistral AI models on Bedrock InvokeModel (AWS docs: "Mistral AI text completion").

Request: ``{"prompt": "<s>[INST] ... [/INST]", "max_tokens", "stop", "temperature",
"top_p"}``. Response and stream chunks: ``{"outputs": [{"text", "stop_reason": "stop" |
"length" | null}]}``; token counts come from Bedrock's invocation metrics.
"""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.common import (
    Chunk,
    Parsed,
    finish_reason,
    fold_system,
    split_system,
    unit_temperature,
)
from textnlp.backends.providers.invocation_metrics import metrics_chunk
from textnlp.domain import GenerationRequest

LENGTH_REASONS = ("length",)


def prompt_text(request: GenerationRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    system, messages = split_system(request)
    out = "<s>"
    for m in fold_system(system, messages):
        out += f"[INST] {m.content} [/INST]" if m.role == "user" else f"{m.content}</s>"
    return out


def request_body(request: GenerationRequest) -> dict[str, Any]:
    params = request.params
    body: dict[str, Any] = {
        "prompt": prompt_text(request),
        "max_tokens": params.max_tokens,
        "temperature": unit_temperature(params),
        "top_p": params.top_p,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    return body


def parse_response(body: dict[str, Any]) -> Parsed:
    outputs = body.get("outputs") or [{}]
    return Parsed(
        text=outputs[0].get("text", ""),
        finish_reason=finish_reason(outputs[0].get("stop_reason"), length=LENGTH_REASONS),
    )


def parse_chunk(chunk: dict[str, Any]) -> Chunk | None:
    outputs = chunk.get("outputs") or [{}]
    reason = outputs[0].get("stop_reason")
    metrics = metrics_chunk(chunk)
    return Chunk(
        text=outputs[0].get("text", ""),
        finish_reason=finish_reason(reason, length=LENGTH_REASONS) if reason else None,
        prompt_tokens=metrics.prompt_tokens if metrics else None,
        completion_tokens=metrics.completion_tokens if metrics else None,
    )
