"""The response cache of dataset generation: repeated runs do not call the model again.

The key covers *everything* that shapes a completion: model id and the identity of its weights,
the full request (messages or prompt) and every sampling parameter, seed included. Only
deterministic requests (a seed, or temperature 0) are cached.

A user's completions and jobs are scoped by their owner (``OwnerScopedCache``): a hit would
tell a user that someone else sent that exact prompt, and what they got, for free. Dataset runs
of the CLI share the unscoped keys; a re-run of a job finds its owner's records.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from textnlp.backends.base import Backend, WrappedBackend
from textnlp.domain import Completion, GenerationRequest
from textnlp.errors import ServiceUnavailable

log = logging.getLogger(__name__)


def cache_key(model_fingerprint: str, request: GenerationRequest) -> str:
    # Fields added later with their default left out, so earlier keys stay valid.
    later = {"control_tokens"} if not request.control_tokens else set()
    later |= {"grammar"} if request.grammar is None else set()
    later |= {"keep_prompt", "cache_scope"}  # where KV is kept or reused shapes no answer
    payload = {
        "model": model_fingerprint,
        "request": request.model_dump(mode="json", exclude=later),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def owner_key(key: str, owner: str) -> str:
    """``key`` as seen by ``owner`` only (a user id): another owner's key never equals it."""
    return hashlib.sha256(f"owner:{owner}\n{key}".encode()).hexdigest()


class ResponseCache(Protocol):
    #: True when a lookup never waits on the network (memory, or a local SQLite file): it runs
    #: on the event loop, which costs less than a thread hop. Writes always go to a thread.
    @property
    def inline_reads(self) -> bool: ...

    def get(self, key: str) -> Completion | None: ...

    def put(self, key: str, completion: Completion) -> None: ...

    def clear(self) -> int: ...

    def close(self) -> None: ...


class SqliteResponseCache:
    """A cache in one SQLite file (safe across processes; WAL mode).

    Bounded: beyond ``max_entries`` the oldest written entries go (checked every
    ``TRIM_EVERY`` writes, so the file may briefly hold a few more).
    """

    #: A primary-key read of a local file (~0.05 ms). A trim holds the lock for longer, but it
    #: runs in a writer's thread once every TRIM_EVERY writes.
    inline_reads = True
    TRIM_EVERY = 256

    def __init__(
        self,
        path: Path,
        *,
        max_entries: int = 200_000,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self.max_entries = max_entries
        self._on_lookup = on_lookup
        self._writes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, completion TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT completion FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if self._on_lookup is not None:
            self._on_lookup(row is not None)
        return Completion.model_validate_json(row[0]) if row else None

    def put(self, key: str, completion: Completion) -> None:
        with self._lock:
            # REPLACE deletes and re-inserts: the rowid orders entries by their last write.
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, completion) VALUES (?, ?)",
                (key, completion.model_dump_json()),
            )
            self._writes += 1
            if self._writes % self.TRIM_EVERY == 0:
                self._trim()

    def _trim(self) -> None:
        self._db.execute(
            "DELETE FROM responses WHERE rowid IN "
            "(SELECT rowid FROM responses ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
            (self.max_entries,),
        )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def clear(self) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM responses").rowcount

    def close(self) -> None:
        self._db.close()


class OwnerScopedCache:
    """A ``ResponseCache`` seen by one owner: every key is scoped by ``owner_key``.

    A view for one request: it does not own the cache it wraps (``close`` leaves it open).
    """

    def __init__(self, cache: ResponseCache, owner: str) -> None:
        self._cache = cache
        self._owner = owner

    @property
    def inline_reads(self) -> bool:
        return self._cache.inline_reads

    def get(self, key: str) -> Completion | None:
        return self._cache.get(owner_key(key, self._owner))

    def put(self, key: str, completion: Completion) -> None:
        self._cache.put(owner_key(key, self._owner), completion)

    def clear(self) -> int:
        # Keys are hashes, so no owner's entries can be picked out: this is the admin's clear.
        return self._cache.clear()

    def close(self) -> None:
        pass


class CachedBackend(WrappedBackend):
    """``inner`` answering deterministic requests (a seed, or temperature 0) from ``cache``,
    the response cache as a backend wrapper (beside ``CappedBackend``, outside it: a hit
    reserves nothing). A hit is marked ``cached`` and costs nothing now (it was paid for once).
    Streams are not cached. The inner backend is loaded and closed by its owner.

    The cache is an optimisation: when it cannot be reached (Redis failing over), a request is
    answered by the model as on a miss and its answer is not kept, with a warning at most once
    a minute; every job record has a seed, so jobs would stop otherwise."""

    name = "cached"

    def __init__(self, inner: Backend, cache: ResponseCache) -> None:
        super().__init__(inner)
        self.cache = cache

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return list(await asyncio.gather(*(self.generate_one(r) for r in requests)))

    async def generate_one(self, request: GenerationRequest) -> Completion:
        if not request.params.deterministic:
            return await self.inner.generate_one(request)
        cache = self.cache
        key = cache_key(self.inner.fingerprint(), request)
        try:
            hit = cache.get(key) if cache.inline_reads else await asyncio.to_thread(cache.get, key)
        except ServiceUnavailable as exc:
            _warn_unreachable(exc)
            return await self.inner.generate_one(request)
        if hit is not None:
            usage = hit.usage
            if usage.cost_usd is not None:
                usage = usage.model_copy(update={"cost_usd": 0.0})
            return hit.model_copy(update={"cached": True, "latency_s": 0.0, "usage": usage})
        completion = await self.inner.generate_one(request)
        try:
            await asyncio.to_thread(cache.put, key, completion)  # after a model call: noise
        except ServiceUnavailable as exc:
            _warn_unreachable(exc)
        return completion


#: When the last "cache unreachable" warning was logged (monotonic seconds).
_warned_at = [float("-inf")]
WARN_EVERY_S = 60.0


def _warn_unreachable(exc: ServiceUnavailable) -> None:
    now = time.monotonic()
    if now - _warned_at[0] >= WARN_EVERY_S:
        _warned_at[0] = now
        log.warning("response cache skipped: %s", exc.message)
