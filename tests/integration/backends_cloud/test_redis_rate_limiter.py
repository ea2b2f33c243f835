"""The Redis rate limiter shares one budget between limiters (workers)."""

from __future__ import annotations

import uuid

import pytest

from textnlp.backends.ratelimit import RateLimit, RedisRateLimiter
from textnlp.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 60 * 28_333_334 + 10.0  # 10 s into a minute window
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_two_workers_share_requests_per_minute(redis_url: str) -> None:
    clock = Clock()
    prefix = f"test:{uuid.uuid4().hex}"
    first = RedisRateLimiter(redis_url, prefix=prefix, clock=clock, sleep=clock.sleep)
    second = RedisRateLimiter(redis_url, prefix=prefix, clock=clock, sleep=clock.sleep)
    limit = RateLimit(requests_per_minute=3)
    try:
        await first.acquire("bedrock:claude", limit, 10)
        await second.acquire("bedrock:claude", limit, 10)
        await first.acquire("bedrock:claude", limit, 10)
        assert clock.slept == []
        await second.acquire("bedrock:claude", limit, 10)  # waits for the next window
        assert clock.slept and clock.slept[0] == pytest.approx(50.0, abs=0.1)
    finally:
        await first.aclose()
        await second.aclose()


async def test_tokens_per_minute_and_max_wait(redis_url: str) -> None:
    clock = Clock()
    limiter = RedisRateLimiter(
        redis_url, prefix=f"test:{uuid.uuid4().hex}", clock=clock, sleep=clock.sleep, max_wait_s=5
    )
    limit = RateLimit(tokens_per_minute=1000)
    try:
        await limiter.acquire("k", limit, 800)
        with pytest.raises(RateLimited):
            await limiter.acquire("k", limit, 300)
    finally:
        await limiter.aclose()
