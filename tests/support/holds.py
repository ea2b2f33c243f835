"""What a job's runs hold against its owner's spending cap, as the owner's spend counts it."""

from __future__ import annotations

from textnlp.adapters.db.job_store import JobStore
from textnlp.adapters.db.spending import SpendingStore


def held_by(store: JobStore, job_id: str) -> float:
    return SpendingStore(store.sessions.kw["bind"]).held_by_job(job_id)
