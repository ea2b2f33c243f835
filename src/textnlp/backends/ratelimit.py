"""Requests- and tokens-per-minute limits of a backend, in one process or shared through Redis.

``acquire(key, limit, tokens)`` waits until one more request of ``tokens`` (prompt estimate +
``max_tokens``) fits the limit. ``InMemoryRateLimiter`` keeps token buckets (smooth refill);
``RedisRateLimiter`` counts per fixed one-minute window in Redis, atomically in a Lua script,
so that every worker of a deployment shares one budget (a fixed window lets up to twice the
rate through across a window boundary; acceptable for a provider quota measured per minute).
A caller that would wait longer than ``max_wait_s`` gets ``RateLimited`` instead.

The Redis limiter takes the process's one (synchronous) Redis client, a ``redis.Redis`` or a
``RedisCluster`` (``textnlp.adapters.redis_client``), and runs its script in a worker thread so
the event loop never waits on the network. A model's request and token counts of one window are
two fields of one hash, so the script touches one key: on a cluster it needs no hash tag against
CROSSSLOT, and it keeps working while its slot migrates between masters (a script of two keys
that do not exist yet is answered TRYAGAIN there until the migration ends).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from textnlp.errors import RateLimited

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RateLimit:
    """None means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


class RateLimiter(Protocol):
    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> None: ...

    async def aclose(self) -> None: ...


class NoRateLimiter:
    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> None:
        return None

    async def aclose(self) -> None:
        return None


class _Bucket:
    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = float(per_minute)
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        return max(0.0, (min(amount, self.capacity) - self.level) / self.rate)


class InMemoryRateLimiter:
    def __init__(
        self,
        *,
        max_wait_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _try(self, key: str, limit: RateLimit, tokens: int) -> float:
        """0 when admitted (and counted), else seconds to wait."""
        now = self._clock()
        wanted = [("requests", limit.requests_per_minute, 1.0)]
        wanted.append(("tokens", limit.tokens_per_minute, float(tokens)))
        with self._lock:
            buckets = []
            for kind, per_minute, amount in wanted:
                if per_minute is None:
                    continue
                bucket = self._buckets.get((key, kind))
                if bucket is None:
                    bucket = self._buckets[(key, kind)] = _Bucket(per_minute, now)
                bucket.refill(now)
                buckets.append((bucket, min(amount, bucket.capacity)))
            wait = max((b.wait_for(a) for b, a in buckets), default=0.0)
            if wait > 0:
                return wait
            for bucket, amount in buckets:
                bucket.level -= amount
            return 0.0

    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> None:
        if limit.unlimited:
            return
        waited = 0.0
        while (wait := self._try(key, limit, tokens)) > 0:
            if waited + wait > self.max_wait_s:
                raise RateLimited(f"rate limit of {key}: next slot in {wait:.1f}s", model=key)
            await self._sleep(wait)
            waited += wait

    async def aclose(self) -> None:
        return None


_WINDOW_SCRIPT = """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local counts = redis.call('HMGET', KEYS[1], 'req', 'tok')
local requests = tonumber(counts[1] or '0')
local used = tonumber(counts[2] or '0')
if (rpm > 0 and requests + 1 > rpm) or (tpm > 0 and used > 0 and used + tokens > tpm) then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'req', 1)
redis.call('HINCRBY', KEYS[1], 'tok', tokens)
redis.call('EXPIRE', KEYS[1], 120)
return 1
"""


class RedisRateLimiter:
    """Limits shared by every worker of a deployment; the client is closed by its owner."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "textnlp:ratelimit",
        max_wait_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._script = client.register_script(_WINDOW_SCRIPT)
        self.prefix = prefix
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep

    def window_key(self, key: str, window: int) -> str:
        """The hash counting ``key``'s requests and tokens in minute ``window`` (since 1970)."""
        return f"{self.prefix}:{key}:{window}"

    async def _try(self, key: str, limit: RateLimit, tokens: int) -> float:
        now = self._clock()
        window = math.floor(now / 60)
        keys = [self.window_key(key, window)]
        args = [limit.requests_per_minute or 0, limit.tokens_per_minute or 0, tokens]
        admitted = await asyncio.to_thread(self._script, keys=keys, args=args)
        return 0.0 if int(admitted) == 1 else (window + 1) * 60 - now + 0.01

    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> None:
        if limit.unlimited:
            return
        waited = 0.0
        while (wait := await self._try(key, limit, tokens)) > 0:
            if waited + wait > self.max_wait_s:
                raise RateLimited(f"rate limit of {key}: next slot in {wait:.1f}s", model=key)
            await self._sleep(wait)
            waited += wait

    async def aclose(self) -> None:
        """Nothing to release: the client is shared and closed by its owner."""
