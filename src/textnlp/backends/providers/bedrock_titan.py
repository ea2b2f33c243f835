"""Amazon Titan Text (Express, Lite, Premier) on Bedrock InvokeModel (AWS docs: "Amazon Titan
Text models").

Request: ``{"inputText", "textGenerationConfig": {"temperature", "topP", "maxTokenCount",
"stopSequences"}}``. Response: ``{"inputTextTokenCount", "results": [{"tokenCount",
"outputText", "completionReason": "FINISH" | "LENGTH" | "STOP_CRITERIA_MET" |
"CONTENT_FILTERED" ...}]}``. Stream chunks: ``{"outputText", "index",
"totalOutputTextTokenCount", "completionReason", "inputTextTokenCount"}``.
"""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.common import (
    Chunk,
    Parsed,
    finish_reason,
    split_system,
    transcript,
    unit_temperature,
)
from textnlp.backends.providers.invocation_metrics import metrics_chunk
from textnlp.domain import GenerationRequest

LENGTH_REASONS = ("LENGTH",)


def input_text(request: GenerationRequest) -> str:
    """Titan's documented conversational format is ``User: ...\\nBot:``."""
    if request.prompt is not None:
        return request.prompt
    system, messages = split_system(request)
    return transcript(system, messages, user="User", assistant="Bot")


def request_body(request: GenerationRequest) -> dict[str, Any]:
    params = request.params
    config: dict[str, Any] = {
        "temperature": unit_temperature(params),
        "topP": params.top_p,
        "maxTokenCount": params.max_tokens,
    }
    if params.stop:
        config["stopSequences"] = list(params.stop)
    return {"inputText": input_text(request), "textGenerationConfig": config}


def parse_response(body: dict[str, Any]) -> Parsed:
    results = body.get("results") or [{}]
    first = results[0]
    return Parsed(
        text=first.get("outputText", ""),
        finish_reason=finish_reason(first.get("completionReason"), length=LENGTH_REASONS),
        prompt_tokens=body.get("inputTextTokenCount"),
        completion_tokens=first.get("tokenCount"),
    )


def parse_chunk(chunk: dict[str, Any]) -> Chunk | None:
    reason = chunk.get("completionReason")
    metrics = metrics_chunk(chunk)
    return Chunk(
        text=chunk.get("outputText", ""),
        finish_reason=finish_reason(reason, length=LENGTH_REASONS) if reason else None,
        prompt_tokens=metrics.prompt_tokens if metrics else chunk.get("inputTextTokenCount"),
        completion_tokens=(
            metrics.completion_tokens if metrics else chunk.get("totalOutputTextTokenCount")
        ),
    )
