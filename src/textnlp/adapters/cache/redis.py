"""The cache in Redis (ElastiCache in ``aws``); every key under one prefix.

The client is the process's one Redis client (``textnlp.adapters.redis_client``), a plain
``redis.Redis`` or a ``RedisCluster``; it belongs to whoever built it, so ``close()`` leaves it
open. Every command here touches one key, so cache entries spread over all the shards of a
cluster; ``clear()`` scans every master (``RedisCluster.scan_iter`` walks each primary's cursor
in turn) and deletes slot by slot, and ``ping()`` asks every master, since one that is down
loses its share of the keys.
"""

from __future__ import annotations

from typing import Any

from textnlp.adapters.redis_client import ping_every_master

_DELETE_BATCH = 500


class RedisCache:
    in_process = False

    def __init__(self, client: Any, prefix: str = "textnlp:cache:") -> None:
        self._client = client
        self._prefix = prefix

    def get(self, key: str) -> bytes | None:
        value = self._client.get(self._prefix + key)
        return bytes(value) if value is not None else None

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._client.set(self._prefix + key, value, ex=ttl_s)

    def delete(self, key: str) -> None:
        self._client.delete(self._prefix + key)

    def clear(self) -> int:
        removed = 0
        batch: list[Any] = []
        # The cluster client splits a many-key DEL into one DEL per hash slot.
        for key in self._client.scan_iter(match=self._escaped_prefix() + "*", count=500):
            batch.append(key)
            if len(batch) >= _DELETE_BATCH:
                removed += int(self._client.delete(*batch))
                batch = []
        if batch:
            removed += int(self._client.delete(*batch))
        return removed

    def ping(self) -> bool:
        try:
            return ping_every_master(self._client)
        except Exception:  # any connection failure means "down" to a health check
            return False

    def close(self) -> None:
        """Nothing to release: the client is shared and closed by its owner."""

    def _escaped_prefix(self) -> str:
        """The prefix as a SCAN pattern that matches it literally."""
        return "".join(f"\\{char}" if char in "*?[]\\" else char for char in self._prefix)
