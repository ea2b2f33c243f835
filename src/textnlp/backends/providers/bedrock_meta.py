"""Meta Llama 2 / 3.x / 4 on Bedrock InvokeModel (AWS docs: "Meta Llama models").

Request: ``{"prompt", "temperature", "top_p", "max_gen_len"}`` with the model's own chat
format in ``prompt`` (Llama 4's header tokens differ from Llama 3's; no stop-sequence
parameter: a request with ``stop`` is refused).
Response and stream chunks: ``{"generation", "prompt_token_count", "generation_token_count",
"stop_reason": "stop" | "length" | null}``.
"""

from __future__ import annotations

from typing import Any

from textnlp.backends.providers.common import (
    Chunk,
    Parsed,
    finish_reason,
    split_system,
    unit_temperature,
)
from textnlp.backends.providers.invocation_metrics import metrics_chunk
from textnlp.domain import GenerationRequest
from textnlp.errors import InvalidRequest

LENGTH_REASONS = ("length",)


def header_prompt(request: GenerationRequest, *, llama4: bool = False) -> str:
    """Llama 3's chat format (``<|start_header_id|>``, ``<|eot_id|>``) or Llama 4's
    (``<|header_start|>``, ``<|eot|>``)."""
    start, end, eot = (
        ("<|header_start|>", "<|header_end|>", "<|eot|>")
        if llama4
        else ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    )
    system, messages = split_system(request)
    turns = [("system", system)] if system else []
    turns += [(m.role, m.content) for m in messages]
    parts = ["<|begin_of_text|>"]
    parts += [f"{start}{role}{end}\n\n{content}{eot}" for role, content in turns]
    parts.append(f"{start}assistant{end}\n\n")
    return "".join(parts)


def llama2_prompt(request: GenerationRequest) -> str:
    system, messages = split_system(request)
    out = ""
    pending_system = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if system else ""
    for m in messages:
        if m.role == "user":
            out += f"<s>[INST] {pending_system}{m.content} [/INST]"
            pending_system = ""
        else:
            out += f" {m.content} </s>"
    return out


def prompt_text(model_id: str, request: GenerationRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    if "llama4" in model_id:
        return header_prompt(request, llama4=True)
    return header_prompt(request) if "llama3" in model_id else llama2_prompt(request)


def request_body(model_id: str, request: GenerationRequest) -> dict[str, Any]:
    """Refuses what the body cannot carry rather than dropping it: stop sequences, and a
    temperature above Llama's 1.0."""
    params = request.params
    if params.stop:
        raise InvalidRequest(
            f"{model_id}: Meta Llama's InvokeModel body has no stop sequences; "
            "use the Converse API (catalogue options: {api: converse})"
        )
    return {
        "prompt": prompt_text(model_id, request),
        "temperature": unit_temperature(params),
        "top_p": params.top_p,
        "max_gen_len": params.max_tokens,
    }


def parse_response(body: dict[str, Any]) -> Parsed:
    return Parsed(
        text=body.get("generation", ""),
        finish_reason=finish_reason(body.get("stop_reason"), length=LENGTH_REASONS),
        prompt_tokens=body.get("prompt_token_count"),
        completion_tokens=body.get("generation_token_count"),
    )


def parse_chunk(chunk: dict[str, Any]) -> Chunk | None:
    reason = chunk.get("stop_reason")
    metrics = metrics_chunk(chunk)
    return Chunk(
        text=chunk.get("generation", ""),
        finish_reason=finish_reason(reason, length=LENGTH_REASONS) if reason else None,
        prompt_tokens=metrics.prompt_tokens if metrics else None,
        completion_tokens=metrics.completion_tokens if metrics else None,
    )
