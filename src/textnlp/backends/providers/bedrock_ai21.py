"""AI21 Labs Jurassic-2 on Bedrock InvokeModel (AWS docs: "AI21 Labs Jurassic-2 models").

Request: ``{"prompt", "maxTokens", "temperature", "topP", "stopSequences"}``. Response:
``{"id", "prompt": {"text", "tokens": [...]}, "completions": [{"data": {"text", "tokens":
[...]}, "finishReason": {"reason": "endoftext" | "length" | "stop", ...}}]}``; token counts are
the lengths of the token lists. Jurassic-2 does not stream.
"""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.common import (
    Parsed,
    finish_reason,
    split_system,
    transcript,
    unit_temperature,
)
from textnlp.domain import GenerationRequest

LENGTH_REASONS = ("length",)


def prompt_text(request: GenerationRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    system, messages = split_system(request)
    return transcript(system, messages, user="User", assistant="Assistant")


def request_body(request: GenerationRequest) -> dict[str, Any]:
    params = request.params
    body: dict[str, Any] = {
        "prompt": prompt_text(request),
        "maxTokens": params.max_tokens,
        "temperature": unit_temperature(params),
        "topP": params.top_p,
    }
    if params.stop:
        body["stopSequences"] = list(params.stop)
    return body


def parse_response(body: dict[str, Any]) -> Parsed:
    completions = body.get("completions") or [{}]
    first = completions[0]
    data = first.get("data", {})
    reason = first.get("finishReason", {}).get("reason")
    prompt_tokens = body.get("prompt", {}).get("tokens")
    tokens = data.get("tokens")
    return Parsed(
        text=data.get("text", ""),
        finish_reason=finish_reason(reason, length=LENGTH_REASONS),
        prompt_tokens=len(prompt_tokens) if isinstance(prompt_tokens, list) else None,
        completion_tokens=len(tokens) if isinstance(tokens, list) else None,
    )
