"""The Hugging Face TGI / LMI container contract of SageMaker endpoints.

AWS docs: "Hugging Face LLM Inference Containers" and SageMaker ``InvokeEndpoint`` /
``InvokeEndpointWithResponseStream``; TGI docs: ``POST /generate`` and ``/generate_stream``.

Request: ``{"inputs": "...", "parameters": {"max_new_tokens", "temperature", "top_p",
"do_sample", "stop", "seed", "details": true, "return_full_text": false}}``. Response:
``[{"generated_text": "...", "details": {"finish_reason": "length" | "eos_token" |
"stop_sequence", "generated_tokens", "seed", "prefill": [...]}}]`` (LMI may answer one object
instead of a list). The stream is server-sent events, ``data:{"token": {"id", "text",
"logprob", "special"}, "generated_text": null, "details": null}`` per token, with
``generated_text`` and ``details`` set on the last one; LMI's jsonlines stream has the same
objects without the ``data:`` prefix. Payload parts split lines anywhere, so ``EventLines``
reassembles them.
"""

from __future__ import annotations

import json
from typing import Any

from textnlp.backends.providers.common import Chunk, Parsed, finish_reason, split_system, transcript
from textnlp.domain import GenerationRequest

LENGTH_REASONS = ("length",)


def inputs_text(request: GenerationRequest) -> str:
    """Base models (GPT-J, Llama-7B) read plain text; chat requests become a transcript."""
    if request.prompt is not None:
        return request.prompt
    system, messages = split_system(request)
    if len(messages) == 1 and messages[0].role == "user" and not system:
        return messages[0].content
    return transcript(system, messages, user="User", assistant="Assistant")


def request_body(request: GenerationRequest, *, stream: bool = False) -> dict[str, Any]:
    params = request.params
    parameters: dict[str, Any] = {
        "max_new_tokens": params.max_tokens,
        "details": True,
        "return_full_text": False,
    }
    # TGI refuses temperature 0 and top_p 1.0: greedy decoding is do_sample false.
    if params.temperature > 0:
        parameters["do_sample"] = True
        parameters["temperature"] = params.temperature
        if params.top_p < 1.0:
            parameters["top_p"] = params.top_p
    else:
        parameters["do_sample"] = False
    if params.stop:
        parameters["stop"] = list(params.stop)
    if params.seed is not None:
        parameters["seed"] = params.seed
    body: dict[str, Any] = {"inputs": inputs_text(request), "parameters": parameters}
    if stream:
        body["stream"] = True
    return body


def parse_response(body: Any) -> Parsed:
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        raise ValueError(f"unexpected TGI answer: {str(body)[:200]}")
    details = first.get("details") or {}
    prefill = details.get("prefill")
    return Parsed(
        text=first.get("generated_text", ""),
        finish_reason=finish_reason(details.get("finish_reason"), length=LENGTH_REASONS),
        prompt_tokens=len(prefill) if prefill else None,
        completion_tokens=details.get("generated_tokens"),
    )


def parse_event(event: dict[str, Any]) -> Chunk | None:
    token = event.get("token") or {}
    text = "" if token.get("special") else token.get("text", "")
    details = event.get("details")
    if not details:
        return Chunk(text=text)
    return Chunk(
        text=text,
        finish_reason=finish_reason(details.get("finish_reason"), length=LENGTH_REASONS),
        completion_tokens=details.get("generated_tokens"),
    )


class EventLines:
    """Reassembles JSON events from payload parts that split lines anywhere."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [event for line in lines if (event := _decode(line)) is not None]

    def flush(self) -> list[dict[str, Any]]:
        rest, self._buffer = self._buffer, b""
        event = _decode(rest)
        return [event] if event is not None else []


def _decode(line: bytes) -> dict[str, Any] | None:
    text = line.strip()
    if text.startswith(b"data:"):
        text = text[5:].strip()
    if not text or text == b"[DONE]" or text.startswith((b"event:", b"id:", b":")):
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None
