"""The cache in Redis (ElastiCache in ``aws``); every key under one prefix.

The client is the process's one Redis client (``textnlp.adapters.redis_client``), a plain
``redis.Redis`` or a ``RedisCluster``; it belongs to whoever built it, so ``close()`` leaves it
open. Every command here touches one key, so cache entries spread over all the shards of a
cluster; ``clear()`` scans every master (``RedisCluster.scan_iter`` walks each primary's cursor
in turn) and deletes slot by slot, and ``ping()`` asks every master, since one that is down
loses its share of the keys.

A connection failure is ``ServiceUnavailable`` (``dependency: cache``), as the other adapters
say their drivers' failures: one line and exit 2 in the CLI, 503 in the API, an outage the
worker waits out. A cache built with ``pause_s`` (the response cache, which its callers skip
when it fails) then fails at once for that long instead of asking Redis again: an unreachable
host costs a connect timeout per command, twice per seeded request (its get and its put).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from textnlp.adapters.redis_client import ping_every_master
from textnlp.errors import ServiceUnavailable

_DELETE_BATCH = 500


@contextmanager
def _reachable() -> Iterator[None]:
    from redis.exceptions import (
        ClusterDownError,
        ReadOnlyError,
        RedisClusterException,
        TryAgainError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    # A failover answers READONLY (a demoted primary), CLUSTERDOWN or TRYAGAIN for a while.
    failing_over = (ReadOnlyError, ClusterDownError, TryAgainError)
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, RedisClusterException, *failing_over) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ServiceUnavailable(
            f"cannot reach the cache (Redis): {first}", dependency="cache"
        ) from None


class RedisCache:
    in_process = False

    def __init__(
        self,
        client: Any,
        prefix: str = "textnlp:cache:",
        *,
        pause_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._pause_s = pause_s
        self._clock = clock
        self._paused_until = float("-inf")

    @contextmanager
    def _command(self) -> Iterator[None]:
        """A command to Redis, unless it failed less than ``pause_s`` ago."""
        if self._clock() < self._paused_until:
            raise ServiceUnavailable(
                "the cache (Redis) failed moments ago; not asked again yet", dependency="cache"
            )
        try:
            with _reachable():
                yield
        except ServiceUnavailable:
            self._paused_until = self._clock() + self._pause_s
            raise

    def get(self, key: str) -> bytes | None:
        with self._command():
            value = self._client.get(self._prefix + key)
        return bytes(value) if value is not None else None

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        with self._command():
            self._client.set(self._prefix + key, value, ex=ttl_s)

    def delete(self, key: str) -> None:
        with self._command():
            self._client.delete(self._prefix + key)

    def clear(self) -> int:
        with self._command():
            return self._clear()

    def _clear(self) -> int:
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
