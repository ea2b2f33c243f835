"""The model rate limiter on Redis buckets: one budget shared by every worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from textnlp.adapters.buckets import RedisBuckets
from textnlp.adapters.redis_client import redis_client
from textnlp.backends.ratelimit import ModelRateLimiter, RateLimit
from textnlp.config import load_settings
from textnlp.errors import RateLimited


class Slept(Exception):
    """Raised by ``Sleeps`` instead of sleeping: the wait is what a test looks at."""


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        raise Slept


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    """The app's client of the machine's Redis (``redis_client`` from settings)."""
    made = redis_client(load_settings(environ={}, cache={"url": redis_url}))
    yield made
    made.close()


async def test_two_workers_share_requests_per_minute(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    settings = load_settings(environ={}, cache={"url": redis_url})
    clients = [redis_client(settings), redis_client(settings)]  # two workers, two clients
    sleeps = Sleeps()
    first, second = (
        ModelRateLimiter(RedisBuckets(client, prefix), sleep=sleeps) for client in clients
    )
    limit = RateLimit(requests_per_minute=3)
    try:
        await first.acquire("bedrock:claude", limit, 10)
        await second.acquire("bedrock:claude", limit, 10)
        await first.acquire("bedrock:claude", limit, 10)
        assert sleeps.waits == []
        with pytest.raises(Slept):  # the fourth waits for one request to refill: 20 s
            await second.acquire("bedrock:claude", limit, 10)
        assert sleeps.waits == [pytest.approx(20.0, abs=0.5)]
    finally:
        for client in clients:
            client.close()


async def test_tokens_per_minute_and_max_wait(client: Any) -> None:
    limiter = ModelRateLimiter(RedisBuckets(client, f"test:{uuid.uuid4().hex}:"), max_wait_s=5)
    limit = RateLimit(tokens_per_minute=1000)
    await limiter.acquire("k", limit, 800)
    with pytest.raises(RateLimited):  # 100 more tokens take 6 s to refill
        await limiter.acquire("k", limit, 300)


def test_closing_the_buckets_leaves_the_shared_client_open(client: Any) -> None:
    RedisBuckets(client, f"test:{uuid.uuid4().hex}:").close()
    assert client.ping()
