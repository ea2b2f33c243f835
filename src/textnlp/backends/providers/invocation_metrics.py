"""Token counts Bedrock adds to InvokeModel answers whatever the provider.

The last chunk of InvokeModelWithResponseStream carries ``"amazon-bedrock-invocationMetrics":
{"inputTokenCount", "outputTokenCount", "invocationLatency", "firstByteLatency"}``; InvokeModel
answers carry the same counts in the ``X-Amzn-Bedrock-Input-Token-Count`` and
``X-Amzn-Bedrock-Output-Token-Count`` headers (AWS docs: "Monitor token usage").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textnlp.backends.providers.common import Chunk

METRICS_KEY = "amazon-bedrock-invocationMetrics"
INPUT_HEADER = "x-amzn-bedrock-input-token-count"
OUTPUT_HEADER = "x-amzn-bedrock-output-token-count"


def metrics_chunk(chunk: dict[str, Any]) -> Chunk | None:
    metrics = chunk.get(METRICS_KEY)
    if not isinstance(metrics, dict):
        return None
    return Chunk(
        prompt_tokens=metrics.get("inputTokenCount"),
        completion_tokens=metrics.get("outputTokenCount"),
    )


def header_counts(headers: Mapping[str, str]) -> tuple[int | None, int | None]:
    lowered = {k.lower(): v for k, v in headers.items()}

    def number(name: str) -> int | None:
        value = lowered.get(name)
        return int(value) if value is not None and value.isdigit() else None

    return number(INPUT_HEADER), number(OUTPUT_HEADER)
