"""The Redis rate limiter shares one budget between limiters (workers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from textnlp.adapters.redis_client import redis_client
from textnlp.backends.ratelimit import RateLimit, RedisRateLimiter
from textnlp.config import load_settings
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


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    """The app's client of the machine's Redis (``redis_client`` from settings)."""
    made = redis_client(load_settings(environ={}, cache={"url": redis_url}))
    yield made
    made.close()


async def test_two_workers_share_requests_per_minute(redis_url: str) -> None:
    clock = Clock()
    prefix = f"test:{uuid.uuid4().hex}"
    settings = load_settings(environ={}, cache={"url": redis_url})
    clients = [redis_client(settings), redis_client(settings)]  # two workers, two clients
    first, second = (
        RedisRateLimiter(client, prefix=prefix, clock=clock, sleep=clock.sleep)
        for client in clients
    )
    limit = RateLimit(requests_per_minute=3)
    try:
        await first.acquire("bedrock:claude", limit, 10)
        await second.acquire("bedrock:claude", limit, 10)
        await first.acquire("bedrock:claude", limit, 10)
        assert clock.slept == []
        await second.acquire("bedrock:claude", limit, 10)  # waits for the next window
        assert clock.slept and clock.slept[0] == pytest.approx(50.0, abs=0.1)
    finally:
        for client in clients:
            client.close()


async def test_tokens_per_minute_and_max_wait(client: Any) -> None:
    clock = Clock()
    limiter = RedisRateLimiter(
        client, prefix=f"test:{uuid.uuid4().hex}", clock=clock, sleep=clock.sleep, max_wait_s=5
    )
    limit = RateLimit(tokens_per_minute=1000)
    await limiter.acquire("k", limit, 800)
    with pytest.raises(RateLimited):
        await limiter.acquire("k", limit, 300)


async def test_closing_the_limiter_leaves_the_shared_client_open(client: Any) -> None:
    limiter = RedisRateLimiter(client, prefix=f"test:{uuid.uuid4().hex}")
    await limiter.aclose()
    assert client.ping()
