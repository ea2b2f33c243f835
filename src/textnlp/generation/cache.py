"""The response cache of dataset generation: repeated runs do not call the model again.

The key covers *everything* that shapes a completion: model id and the identity of its weights,
the full request (messages or prompt) and every sampling parameter, seed included. Only
deterministic requests (a seed, or temperature 0) are cached.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from textnlp.domain import Completion, GenerationRequest


def cache_key(model_fingerprint: str, request: GenerationRequest) -> str:
    payload = {"model": model_fingerprint, "request": request.model_dump(mode="json")}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache(Protocol):
    #: True when lookups never wait on I/O (an in-process store): no thread hop is needed.
    @property
    def in_process(self) -> bool: ...

    def get(self, key: str) -> Completion | None: ...

    def put(self, key: str, completion: Completion) -> None: ...

    def clear(self) -> int: ...

    def close(self) -> None: ...


class SqliteResponseCache:
    """A cache in one SQLite file (safe across processes; WAL mode).

    Bounded: beyond ``max_entries`` the oldest written entries go (checked every
    ``TRIM_EVERY`` writes, so the file may briefly hold a few more).
    """

    in_process = False
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
