"""Records as a worker stores them, for tests of what is done with stored records."""

from __future__ import annotations

from typing import Any

from textnlp.domain import Record
from textnlp.domain.generation import GenerationParams
from textnlp.domain.records import Provenance, RecordStatus


def stored_record(
    index: int, status: RecordStatus = "ok", *, text: str | None = None, **provenance: Any
) -> Record:
    """Record ``index`` with a plain provenance (``provenance`` overrides its fields)."""
    fields: dict[str, Any] = {
        "template_id": "t",
        "template_version": "1",
        "model": "m",
        "params": GenerationParams(),
        "seed": index,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "finish_reason": "stop",
        "latency_s": 0.1,
        "created_at": "2026-12-01T00:00:00+00:00",
    }
    return Record(
        index=index,
        status=status,
        text=f"text {index}" if text is None else text,
        error=None if status == "ok" else status,
        provenance=Provenance(**(fields | provenance)),
    )
