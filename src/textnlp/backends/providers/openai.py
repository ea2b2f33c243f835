"""OpenAI chat completions and (legacy) completions bodies, as served by OpenAI, vLLM,
llama-cpp-python's server and other compatible endpoints.

OpenAI API reference: "Create chat completion" (``{"model", "messages", "max_tokens",
"temperature", "top_p", "seed", "stop", "n", "stream"}`` -> ``{"choices": [{"index",
"message": {"role", "content"}, "finish_reason": "stop" | "length" | "content_filter" ...}],
"usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}``; stream chunks
``{"object": "chat.completion.chunk", "choices": [{"delta": {"content"}, "finish_reason"}]}``,
the usage on a last chunk with empty ``choices`` when ``stream_options.include_usage`` is set)
and "Create completion" (``prompt`` in, ``choices[].text`` out).

vLLM extras (vLLM docs: "OpenAI-Compatible Server", extra parameters): ``guided_json``,
``best_of``, ``ignore_eos``, ``min_tokens``... are sent in the body beside the standard fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textnlp.backends.providers.common import Chunk, Parsed, finish_reason
from textnlp.domain import GenerationRequest

LENGTH_REASONS = ("length",)


@dataclass(frozen=True)
class VllmExtras:
    """vLLM-only sampling extras; only sent to servers configured with ``flavour: vllm``."""

    guided_json: dict[str, Any] | None = None
    best_of: int | None = None
    min_tokens: int | None = None

    def as_body(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def _sampling(request: GenerationRequest) -> dict[str, Any]:
    params = request.params
    body: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if params.n != 1:
        body["n"] = params.n
    return body


def chat_body(model: str, request: GenerationRequest) -> dict[str, Any]:
    if request.prompt is not None:
        messages = [{"role": "user", "content": request.prompt}]
    else:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
    return {"model": model, "messages": messages, **_sampling(request)}


def completion_body(model: str, request: GenerationRequest) -> dict[str, Any]:
    return {"model": model, "prompt": request.as_text(), **_sampling(request)}


def extra_body(
    request: GenerationRequest, *, vllm: bool, extras: VllmExtras | None = None
) -> dict[str, Any]:
    """Non-standard fields (sent through the SDK's ``extra_body``)."""
    if not vllm:
        return {}
    body = extras.as_body() if extras else {}
    if request.ignore_eos:
        body["ignore_eos"] = True
    return body


def parse_response(body: dict[str, Any]) -> Parsed:
    """A ``chat.completion`` or ``text_completion`` object (the first choice); ``ValueError``
    for a body without a choice (a proxy's or a wrong server's: not an empty answer)."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError(f"no choices in the answer: {str(body)[:200]}")
    first = choices[0]
    message = first.get("message")
    text = (message or {}).get("content") if message is not None else first.get("text")
    usage = body.get("usage") or {}
    return Parsed(
        text=text or "",
        finish_reason=finish_reason(first.get("finish_reason"), length=LENGTH_REASONS),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def parse_chunk(chunk: dict[str, Any]) -> Chunk | None:
    choices = chunk.get("choices") or []
    usage = chunk.get("usage") or {}
    text = ""
    reason = None
    if choices:
        first = choices[0]
        delta = first.get("delta")
        text = ((delta or {}).get("content") if delta is not None else first.get("text")) or ""
        raw = first.get("finish_reason")
        reason = finish_reason(raw, length=LENGTH_REASONS) if raw else None
    if not text and reason is None and not usage:
        return None
    return Chunk(
        text=text,
        finish_reason=reason,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )
