"""Anthropic's Message Batches through the backend's own ``anthropic`` client:
``messages.batches.create`` with the part's requests, ``retrieve`` to poll
(``processing_status``: ``in_progress``, ``canceling``, ``ended``), ``results`` (the JSONL at
the batch's ``results_url``) and ``cancel``.

Limits (Anthropic docs "Batch processing"): 100,000 requests or 256 MB per batch.

A Message Batch carries no metadata: the job and part are in the custom ids of its requests
(``anthropic_lines.part_prefix``), which only its results show. ``find`` therefore lists the
workspace's batches created since the part's submit began (newest first) with as many requests
as the part: an ended one is taken when its first result has the part's prefix; of those still
running, whose requests cannot be read, the one created nearest the time the submit began. Should
that be another client's batch of the same size made in the same minutes, its results carry
other custom ids, which ``results`` ignores: the part's records are then generated online, never
filled with another batch's answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from textnlp.backends.anthropic_api import AnthropicBackend
from textnlp.backends.batch import anthropic_lines
from textnlp.backends.batch.base import (
    CLOCK_SKEW_S,
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

log = logging.getLogger(__name__)

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
#: Batches per page when ``find`` lists them (Anthropic allows 1 to 1000).
LIST_PAGE = 100
#: How long after its submit began a part's batch may have been created (the create call's
#: timeout and retries are well within it).
CREATE_WINDOW_S = 3600.0


class AnthropicBatch(BatchProvider):
    name = "anthropic"
    # The requests are split on their untagged lines: keep room for the part's custom ids.
    limits = BatchLimits(MAX_REQUESTS, MAX_BYTES - MAX_REQUESTS * anthropic_lines.TAG_ROOM)

    def __init__(self, backend: AnthropicBackend) -> None:
        super().__init__(backend.spec, backend.context.prices)
        self.backend = backend
        self.client: Any = sdk_client(backend)

    def params(self, request: GenerationRequest) -> dict[str, Any]:
        """The Messages body the backend sends online (``AnthropicBackend``'s rules)."""
        body = bedrock_anthropic.messages_body(
            request, version=None, top_p=self.backend.options.send_top_p
        )
        return {"model": self.spec.endpoint or self.spec.id, **body}

    def encode(self, index: int, request: GenerationRequest) -> bytes:
        return json.dumps(anthropic_lines.request_entry(index, self.params(request))).encode()

    def _error(self, exc: Exception) -> Exception:
        return map_sdk_error(exc, backend=self.backend.name, model=self.spec.id)

    async def submit(self, job_id: str, part: int, lines: Sequence[BatchLine]) -> str:
        import anthropic

        prefix = anthropic_lines.part_prefix(job_id, part)
        requests = [anthropic_lines.tagged(json.loads(x.line), prefix, x.index) for x in lines]
        try:
            batch = await self.client.messages.batches.create(requests=requests)
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        return str(batch.id)

    async def find(
        self, job_id: str, part: int, lines: Sequence[BatchLine], since: float
    ) -> str | None:
        import anthropic

        prefix = anthropic_lines.part_prefix(job_id, part)
        running: list[tuple[float, str]] = []
        try:
            async for batch in self.client.messages.batches.list(limit=LIST_PAGE):
                created = batch.created_at.timestamp()
                if created < since - CLOCK_SKEW_S:
                    break  # newest first: the rest are older than the submit
                counts = batch.request_counts.model_dump() if batch.request_counts else {}
                size = sum(int(v or 0) for v in counts.values())
                if created > since + CREATE_WINDOW_S or size != len(lines):
                    continue
                if batch.processing_status != "ended":
                    running.append((created, str(batch.id)))
                elif await self._first_custom_id(str(batch.id)) in _ids(prefix, lines):
                    return str(batch.id)
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        if not running:
            return None
        if len(running) > 1:
            log.warning(
                "job %s part %d: %d running Anthropic batches of %d requests were created "
                "since its submit began; re-attaching to the one made nearest that time (its "
                "results are checked against the part's custom ids)",
                job_id,
                part,
                len(running),
                len(lines),
            )
        return min(running, key=lambda batch: abs(batch[0] - since))[1]

    async def _first_custom_id(self, batch_id: str) -> str | None:
        """The custom id of an ended batch's first result (None when it has none, or its
        results are gone: an archived batch)."""
        import anthropic

        try:
            entries = await self.client.messages.batches.results(batch_id)
        except anthropic.NotFoundError:
            return None
        except anthropic.APIError:
            raise
        except anthropic.AnthropicError:  # the SDK's "no results_url": nothing to read
            return None
        try:
            async for entry in entries:
                return str(entry.custom_id)
        finally:
            await entries.close()  # one line is enough: leave the rest unread
        return None

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

    async def results(
        self, batch_id: str, requests: dict[int, GenerationRequest], *, job_id: str, part: int
    ) -> BatchResults:
        import anthropic

        prefix = anthropic_lines.part_prefix(job_id, part)
        found: BatchResults = {}
        try:
            entries = await self.client.messages.batches.results(batch_id)
            async for entry in entries:
                index, answer = anthropic_lines.parse_result(entry.model_dump(), prefix)
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


def _ids(prefix: str, lines: Sequence[BatchLine]) -> set[str]:
    return {f"{prefix}{line.index}" for line in lines}
