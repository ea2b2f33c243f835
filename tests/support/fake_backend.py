"""A deterministic backend for unit tests of the pipeline (never a default anywhere)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

from textnlp.backends.base import PerRequestBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, TokenDelta, Usage


class FakeBackend(PerRequestBackend):
    """Answers a text derived from the request.

    ``json_failures``: the first N calls answer invalid JSON;
    """

    name = "fake"

    def __init__(
        self, spec: ModelSpec | None = None, *, json_failures: int = 0, delay_s: float = 0.0
    ) -> None:
        super().__init__(spec or ModelSpec(id="fake-model", backend="fake", context_length=4096))
        self.calls = 0
        self.json_failures = json_failures
        self.delay_s = delay_s

    def fingerprint(self) -> str:
        return "fake:1"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _text(self, request: GenerationRequest) -> str:
        digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:12]
        if "JSON" in request.as_text():
            if self.calls <= self.json_failures:
                return "not json at all"
            return "Sure! " + json.dumps({"question": f"What is {digest}?", "answer": digest})
        return f"text {digest}"

    async def complete(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self._text(request)
        return Completion(
            text=text,
            finish_reason="stop",
            model=self.spec.id,
            usage=Usage(
                prompt_tokens=self.count_tokens(request.as_text()),
                completion_tokens=self.count_tokens(text),
            ),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        completion = await self.complete(request)
        for word in completion.text.split(" "):
            yield TokenDelta(text=word + " ")
        yield TokenDelta(text="", finish_reason="stop", usage=completion.usage)
