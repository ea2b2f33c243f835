"""OpenAI's Batch API through the backend's own ``openai`` client (its key, base URL, timeouts
and transport): the part's JSONL uploaded with ``purpose="batch"``, ``batches.create`` with a
24 h window, ``batches.retrieve`` to poll, the output and error files read when it has ended,
``batches.cancel``. Each batch carries the job and part in its ``metadata``
(``textnlp_job``, ``textnlp_part``); ``find`` lists the organisation's batches, newest first,
down to the time the part's submit began, and matches them. A file uploaded by a submit that
died before its batch was created stays behind (OpenAI keeps batch input files; they cost
nothing but storage and expire with the organisation's file policy).

Limits (OpenAI guide "Batch API"): 50,000 requests and 200 MB per input file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from textnlp.backends.batch import openai_lines
from textnlp.backends.batch.base import (
    CLOCK_SKEW_S,
    BatchLimits,
    BatchLine,
    BatchProvider,
    BatchResults,
    BatchState,
    sdk_client,
)
from textnlp.backends.openai_compat import OpenAICompatBackend
from textnlp.backends.providers import openai as openai_body
from textnlp.backends.sdk_errors import map_sdk_error
from textnlp.domain import GenerationRequest

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
COMPLETION_WINDOW = "24h"
#: Batches per page when ``find`` lists them (OpenAI allows 1 to 100).
LIST_PAGE = 100
#: Statuses after which a batch changes no more.
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenAIBatch(BatchProvider):
    name = "openai"
    limits = BatchLimits(MAX_REQUESTS, MAX_BYTES)

    def __init__(self, backend: OpenAICompatBackend) -> None:
        super().__init__(backend.spec, backend.context.prices)
        self.backend = backend
        self.client: Any = sdk_client(backend)
        self.url = openai_lines.CHAT_URL if backend.chat_api else openai_lines.COMPLETIONS_URL

    def encode(self, index: int, request: GenerationRequest) -> bytes:
        backend = self.backend
        if backend.chat_api:
            body = openai_body.chat_body(backend.served_model, request)
        else:
            body = openai_body.completion_body(backend.served_model, request)
        body.update(openai_body.extra_body(request, vllm=backend.vllm))
        return json.dumps(openai_lines.request_line(index, body, self.url)).encode()

    def _error(self, exc: Exception) -> Exception:
        return map_sdk_error(exc, backend=self.backend.name, model=self.spec.id)

    async def submit(self, job_id: str, part: int, lines: Sequence[BatchLine]) -> str:
        import openai

        data = b"".join(line.line + b"\n" for line in lines)
        name = f"textnlp-{job_id}-part-{part}.jsonl"
        try:
            upload = await self.client.files.create(file=(name, data), purpose="batch")
            batch = await self.client.batches.create(
                input_file_id=upload.id,
                endpoint=self.url,
                completion_window=COMPLETION_WINDOW,
                metadata=metadata(job_id, part),
            )
        except openai.APIError as exc:
            raise self._error(exc) from exc
        return str(batch.id)

    async def find(
        self, job_id: str, part: int, lines: Sequence[BatchLine], since: float
    ) -> str | None:
        import openai

        wanted = metadata(job_id, part)
        try:
            async for batch in self.client.batches.list(limit=LIST_PAGE):
                if batch.created_at < since - CLOCK_SKEW_S:
                    return None  # newest first: the rest are older than the submit
                mine = batch.metadata or {}
                if all(mine.get(key) == value for key, value in wanted.items()):
                    return str(batch.id)
        except openai.APIError as exc:
            raise self._error(exc) from exc
        return None

    async def poll(self, batch_id: str) -> BatchState:
        import openai

        try:
            batch = await self.client.batches.retrieve(batch_id)
        except openai.APIError as exc:
            raise self._error(exc) from exc
        errors = getattr(batch.errors, "data", None) or []
        reason = "; ".join(f"{e.code}: {e.message}" for e in errors) or None
        counts = batch.request_counts.model_dump() if batch.request_counts else {}
        return BatchState(
            status=batch.status,
            ended=batch.status in ENDED,
            failed=batch.status == "failed",
            counts={k: int(v) for k, v in counts.items() if v is not None},
            error=reason,
        )

    async def results(
        self, batch_id: str, requests: dict[int, GenerationRequest], *, job_id: str, part: int
    ) -> BatchResults:
        import openai

        try:
            batch = await self.client.batches.retrieve(batch_id)
            texts = []
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    content = await self.client.files.content(file_id)
                    texts.append(content.text)
        except openai.APIError as exc:
            raise self._error(exc) from exc
        found: BatchResults = {}
        for text in texts:  # the output file first: an answer wins over an error line
            for index, answer in openai_lines.parse_file(text):
                if index is None or index not in requests or index in found:
                    continue
                found[index] = self.answer(answer, requests[index])
        return found

    async def cancel(self, batch_id: str) -> None:
        import openai

        try:
            await self.client.batches.cancel(batch_id)
        except openai.APIStatusError as exc:
            if exc.status_code not in (400, 409):  # 400/409: it has ended already
                raise self._error(exc) from exc


def metadata(job_id: str, part: int) -> dict[str, str]:
    """The tag of a part's batch (OpenAI metadata: string values)."""
    return {"textnlp_job": job_id, "textnlp_part": str(part)}
