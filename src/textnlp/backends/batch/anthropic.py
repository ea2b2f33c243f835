"""Anthropic's Message Batches through the backend's own ``anthropic`` client:
``messages.batches.create`` with the part's requests, ``retrieve`` to poll
(``processing_status``: ``in_progress``, ``canceling``, ``ended``), ``results`` (the JSONL at
the batch's ``results_url``) and ``cancel``.

Limits (Anthropic docs "Batch processing"): 100,000 requests or 256 MB per batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from textnlp.backends.anthropic_api import AnthropicBackend
from textnlp.backends.batch import anthropic_lines
from textnlp.backends.batch.base import (
    BatchLimits,
    BatchLine,
    BatchProvider,
    BatchResults,
    BatchState,
    sdk_client,
)
from textnlp.backends.providers import bedrock_anthropic
from textnlp.backends.sdk_errors import map_sdk_error
from textnlp.domain import GenerationRequest

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024


class AnthropicBatch(BatchProvider):
    name = "anthropic"
    limits = BatchLimits(MAX_REQUESTS, MAX_BYTES)

    def __init__(self, backend: AnthropicBackend) -> None:
        super().__init__(backend.spec, backend.context.prices)
        self.backend = backend
        self.client: Any = sdk_client(backend)

    def params(self, request: GenerationRequest) -> dict[str, Any]:
        """The Messages body the backend sends online (``AnthropicBackend``'s rules)."""
        body = bedrock_anthropic.messages_body(request, version=None)
        if not self.backend.options.send_top_p:
            body.pop("top_p", None)
        return {"model": self.spec.endpoint or self.spec.id, **body}

    def encode(self, index: int, request: GenerationRequest) -> bytes:
        return json.dumps(anthropic_lines.request_entry(index, self.params(request))).encode()

    def _error(self, exc: Exception) -> Exception:
        return map_sdk_error(exc, backend=self.backend.name, model=self.spec.id)

    async def submit(self, job_id: str, part: int, lines: Sequence[BatchLine]) -> str:
        import anthropic

        try:
            batch = await self.client.messages.batches.create(
                requests=[json.loads(line.line) for line in lines]
            )
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        return str(batch.id)

    async def poll(self, batch_id: str) -> BatchState:
        import anthropic

        try:
            batch = await self.client.messages.batches.retrieve(batch_id)
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        counts = batch.request_counts.model_dump() if batch.request_counts else {}
        return BatchState(
            status=batch.processing_status,
            ended=batch.processing_status == "ended",
            counts={k: int(v) for k, v in counts.items() if v is not None},
        )

    async def results(self, batch_id: str, requests: dict[int, GenerationRequest]) -> BatchResults:
        import anthropic

        found: BatchResults = {}
        try:
            entries = await self.client.messages.batches.results(batch_id)
            async for entry in entries:
                index, answer = anthropic_lines.parse_result(entry.model_dump())
                if index is None or index not in requests or index in found:
                    continue
                found[index] = self.answer(answer, requests[index])
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        return found

    async def cancel(self, batch_id: str) -> None:
        import anthropic

        try:
            await self.client.messages.batches.cancel(batch_id)
        except anthropic.APIStatusError as exc:
            if exc.status_code not in (400, 409):  # it has ended already
                raise self._error(exc) from exc
