"""Token buckets per user, login name or client address: in process or in Redis (``aws``).

``acquire(key, rate, burst)`` takes one token from the bucket ``key`` (refilled at ``rate``
tokens per second up to ``burst``) and answers 0.0 when allowed, else the seconds to wait.

- In process, a bucket that has refilled to full answers exactly as a missing one, so idle
  buckets are dropped once full (swept every ``sweep_every_s``), and beyond ``max_buckets`` the
  least recently used go first: memory stays bounded whatever keys clients make up.
- In Redis, a bucket is one Lua script, atomic across every API task; its key expires once the
  bucket would be full again. It touches one key, so it runs on a Redis Cluster as on one
  server. The client is the process's one Redis client (``textnlp.adapters.redis_client``); its
  owner closes it.

When Redis cannot be reached, the Redis limiter rides the outage out on local buckets for
``outage_window_s`` (5 minutes; 0: not at all), then refuses with ``ServiceUnavailable`` (503)
until Redis is back. Why not fail closed at once: the limits are not the data, and a failover
of ElastiCache (tens of seconds) should not take every authenticated route and login down with
it; local buckets still bound each task (login guessing included), only N tasks together allow
N times the limit. Why not forever: autoscaling adds tasks under load, so the local limits
loosen just when they matter, and an outage longer than a failover is an incident to see (5xx,
alarms), not a silent N-fold limit.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from textnlp.errors import ServiceUnavailable

log = logging.getLogger("textnlp.auth")

#: Seconds of a Redis outage served from local buckets before limited requests answer 503.
OUTAGE_WINDOW_S = 300.0
#: While Redis is down, one request tries it again at most this often (a try may wait for the
#: client's connect timeout); the others use the local buckets meanwhile.
RETRY_S = 5.0


class RateLimiter(Protocol):
    def acquire(self, key: str, rate: float, burst: int) -> float: ...

    def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_buckets: int = 100_000,
        sweep_every_s: float = 60.0,
    ) -> None:
        self._clock = clock
        self._max_buckets = max_buckets
        self._sweep_every_s = sweep_every_s
        #: key -> (tokens, last update, when the bucket is full again), least recently used
        #: first (each acquire moves its key to the end).
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._next_sweep = float(clock()) + sweep_every_s
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float, burst: int) -> float:
        now = float(self._clock())
        with self._lock:
            state = self._buckets.pop(key, None)
            tokens, last = (float(burst), now) if state is None else state[:2]
            tokens = min(float(burst), tokens + (now - last) * rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate
            self._buckets[key] = (tokens, now, now + (burst - tokens) / rate)
            if now >= self._next_sweep:
                self._sweep(now)
            while len(self._buckets) > self._max_buckets:
                del self._buckets[next(iter(self._buckets))]
            return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        full = [key for key, (_, _, full_at) in self._buckets.items() if full_at <= now]
        for key in full:
            del self._buckets[key]
        self._next_sweep = now + self._sweep_every_s

    def close(self) -> None:
        with self._lock:
            self._buckets.clear()


_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', key, math.ceil((burst - tokens) / rate) + 1)
return tostring(wait)
"""


class RedisRateLimiter:
    """Buckets shared by every API task through Redis (time from the Redis server); local
    buckets during an outage of up to ``outage_window_s`` (see the module's docstring)."""

    def __init__(
        self,
        client: Any,
        prefix: str = "textnlp:rl:",
        *,
        outage_window_s: float = OUTAGE_WINDOW_S,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from redis.exceptions import RedisClusterException, RedisError

        self._prefix = prefix
        self._script = client.register_script(_LUA)
        self._outage_errors = (RedisError, RedisClusterException, OSError)
        self._outage_window_s = outage_window_s
        self._retry_s = retry_s
        self._clock = clock
        self._local = MemoryRateLimiter(clock)
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    def acquire(self, key: str, rate: float, burst: int) -> float:
        now = float(self._clock())
        if self._should_try_redis(now):
            try:
                wait = float(self._script(keys=[self._prefix + key], args=[rate, burst]))
            except self._outage_errors as exc:
                self._went_down(now, exc)
            else:
                self._came_back()
                return 0.0 if wait <= 0 or math.isnan(wait) else wait
        return self._acquire_locally(key, rate, burst, now)

    def _should_try_redis(self, now: float) -> bool:
        with self._lock:
            if self._down_since is None:
                return True
            if now < self._retry_at:
                return False
            self._retry_at = now + self._retry_s  # this request probes; the others wait it out
            return True

    def _went_down(self, now: float, exc: BaseException) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = now
            self._retry_at = now + self._retry_s
        if first:
            log.warning(
                "rate limits: Redis unreachable (%s); local buckets for up to %.0f s",
                type(exc).__name__,
                self._outage_window_s,
            )

    def _came_back(self) -> None:
        if self._down_since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            self._down_since = None
        log.warning("rate limits: Redis is back; shared buckets again")

    def _acquire_locally(self, key: str, rate: float, burst: int, now: float) -> float:
        down_since = self._down_since
        if down_since is not None and now - down_since >= self._outage_window_s:
            raise ServiceUnavailable(
                "rate limits are unavailable (the cache cannot be reached); retry later",
                dependency="cache",
                retry_after=self._retry_s,
            )
        return self._local.acquire(key, rate, burst)

    def close(self) -> None:
        """The client is shared and closed by its owner; only the local buckets go."""
        self._local.close()
