"""Requests- and tokens-per-minute limits of a model, on the platform's token buckets.

``ModelRateLimiter.acquire(key, limit, tokens)`` waits until one more request of ``tokens``
(prompt estimate + ``max_tokens``) fits ``limit``: a bucket of two lanes (``textnlp.adapters
.buckets``), one request and its tokens, each refilled smoothly over a minute. The buckets are
the process's: in Redis when the deployment has one (every worker shares one budget per model),
else in process. A caller that would wait longer than ``max_wait_s`` gets ``RateLimited``.
Redis is called in a worker thread, so the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from textnlp.adapters.buckets import Lane, MemoryBuckets, TokenBuckets
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

    def lanes(self, tokens: int) -> list[Lane]:
        """The bucket lanes of one request of ``tokens``."""
        lanes = []
        for per_minute, amount in (
            (self.requests_per_minute, 1.0),
            (self.tokens_per_minute, float(tokens)),
        ):
            if per_minute is not None:
                lanes.append(Lane(per_minute / 60.0, float(per_minute), amount))
        return lanes


class ModelRateLimiter:
    def __init__(
        self,
        buckets: TokenBuckets | None = None,
        *,
        max_wait_s: float = 60.0,
        prefix: str = "model:",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """``buckets``: the process's (None: a private in-process set). In-process buckets are
        taken on the event loop (no network); others in a thread."""
        self.buckets: TokenBuckets = buckets if buckets is not None else MemoryBuckets()
        self.max_wait_s = max_wait_s
        self._prefix = prefix
        self._inline = isinstance(self.buckets, MemoryBuckets)
        self._sleep = sleep

    async def _take(self, key: str, lanes: list[Lane]) -> float:
        if self._inline:
            return self.buckets.take(key, lanes)
        return await asyncio.to_thread(self.buckets.take, key, lanes)

    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> None:
        if limit.unlimited:
            return
        lanes = limit.lanes(tokens)
        waited = 0.0
        while (wait := await self._take(self._prefix + key, lanes)) > 0:
            if waited + wait > self.max_wait_s:
                raise RateLimited(f"rate limit of {key}: next slot in {wait:.1f}s", model=key)
            await self._sleep(wait)
            waited += wait
