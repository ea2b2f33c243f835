"""The cache in Redis (ElastiCache in ``aws``); every key under one prefix."""

from __future__ import annotations

from typing import Any


class RedisCache:
    in_process = False

    def __init__(self, client: Any, prefix: str = "textnlp:cache:") -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str = "textnlp:cache:") -> RedisCache:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=2.0), prefix)

    def get(self, key: str) -> bytes | None:
        value = self._client.get(self._prefix + key)
        return bytes(value) if value is not None else None

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._client.set(self._prefix + key, value, ex=ttl_s)

    def clear(self) -> int:
        removed = 0
        batch: list[Any] = []
        for key in self._client.scan_iter(match=self._prefix + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += int(self._client.delete(*batch))
                batch = []
        if batch:
            removed += int(self._client.delete(*batch))
        return removed

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except Exception:  # any connection failure means "down" to a health check
            return False

    def close(self) -> None:
        self._client.close()
