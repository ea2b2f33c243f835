"""A priced model for cost tests: an OpenAI-compatible server faked at the HTTP level.

``PricedOpenAIFake`` is the real ``OpenAICompatBackend`` (the ``openai`` SDK, the body
translation, retries, and ``CloudBackend``'s pricing from the settings' price table) whose HTTP
client answers from ``httpx2.MockTransport``: chat completions in the shape of the OpenAI API
reference, with ``usage`` (streamed requests get Server-Sent Events of chunks, ``usage`` on the
last one). The answer is a pure function of the request body, so a record costs the same
whichever attempt or worker produces it. Catalogue entry (price in settings)::

    - id: fake-priced
      backend: openai-fake
      endpoint: http://priced.test/v1
      context_length: 4096
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx2

from textnlp.backends.cloud import CloudContext
from textnlp.backends.openai_compat import OpenAICompatBackend
from textnlp.backends.spec import ModelSpec

#: Completion tokens of every answer (fewer when max_tokens is lower).
COMPLETION_TOKENS = 20
#: A price for ``fake-priced`` (USD per 1K tokens), for ``models.prices``.
PRICE = {"input_per_1k": 1.0, "output_per_1k": 2.0}


def prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))


def answer(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    digest = hashlib.sha256(request.content).hexdigest()[:12]
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    if "JSON" in prompt:
        text = json.dumps({"question": f"What is {digest}?", "answer": digest})
    else:
        text = f"priced answer {digest}"
    completion = min(COMPLETION_TOKENS, int(body.get("max_tokens") or COMPLETION_TOKENS))
    usage = {"prompt_tokens": prompt_tokens(body), "completion_tokens": completion}
    usage["total_tokens"] = usage["prompt_tokens"] + completion
    if body.get("stream"):
        return _sse(digest, body, text, usage)
    return httpx2.Response(
        200,
        json={
            "id": f"chatcmpl-{digest}",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model", "fake-priced"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        },
    )


def _sse(digest: str, body: dict[str, Any], text: str, usage: dict[str, int]) -> httpx2.Response:
    base = {
        "id": f"chatcmpl-{digest}",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": body.get("model", "fake-priced"),
    }
    pieces = [{"content": word + " "} for word in text.split(" ")]
    events = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        for delta in pieces
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": usage})
    wire = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=wire.encode()
    )


class PricedOpenAIFake(OpenAICompatBackend):
    name = "openai-fake"

    def __init__(self, spec: ModelSpec, *, context: CloudContext | None = None) -> None:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))
        super().__init__(spec, context=context, http_client=client)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """The server's side of one HTTP request (subclasses inject faults here)."""
        return answer(request)


def expected_cost(prompt: int, completion: int = COMPLETION_TOKENS) -> float:
    return (prompt * PRICE["input_per_1k"] + completion * PRICE["output_per_1k"]) / 1000
