"""Completions in a ``KeyValueCache``: the ``ResponseCache`` the generation service expects.

The key (``textnlp.generation.cache.cache_key``) covers the model's weights and the full
request, every sampling parameter included; only deterministic requests reach the cache.
Hits and misses are counted for the metrics.
"""

from __future__ import annotations

from collections.abc import Callable

from textnlp.adapters.cache.base import KeyValueCache
from textnlp.domain import Completion


class CompletionCache:
    def __init__(
        self,
        store: KeyValueCache,
        ttl_s: int,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self.store = store
        self._ttl = ttl_s
        self._on_lookup = on_lookup

    @property
    def inline_reads(self) -> bool:
        return self.store.in_process

    def get(self, key: str) -> Completion | None:
        raw = self.store.get("completion:" + key)
        if self._on_lookup is not None:
            self._on_lookup(raw is not None)
        return Completion.model_validate_json(raw) if raw is not None else None

    def put(self, key: str, completion: Completion) -> None:
        self.store.set("completion:" + key, completion.model_dump_json().encode(), self._ttl)

    def clear(self) -> int:
        return self.store.clear()

    def close(self) -> None:
        self.store.close()
