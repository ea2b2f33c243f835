"""Both rate limiters' Lua scripts on a Redis Cluster: shared budgets, keys on every shard, and
no CROSSSLOT (each script touches one key)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.redis_cluster.conftest import cluster_settings
from tests.support.redis_cluster import RedisClusterProcesses
from textnlp.adapters.redis_client import redis_client
from textnlp.auth.ratelimit import RedisRateLimiter as TokenBuckets
from textnlp.backends.ratelimit import RateLimit
from textnlp.backends.ratelimit import RedisRateLimiter as WindowLimiter
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


def test_token_buckets_are_shared_by_two_clients_on_every_shard(
    redis_cluster: RedisClusterProcesses, cluster_client: Any, prefix: str
) -> None:
    second_client = redis_client(cluster_settings(redis_cluster.url))
    first, second = TokenBuckets(cluster_client), TokenBuckets(second_client)
    users = [f"{prefix}user-{i}" for i in range(30)]
    try:
        for user in users:
            waits = [limiter.acquire(user, 1.0, 3) for limiter in (first, second, first, second)]
            assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0
    finally:
        second_client.close()
    keys = [f"textnlp:rl:{user}" for user in users]
    assert redis_cluster.masters_serving(keys) == set(redis_cluster.ports)


async def test_model_windows_are_shared_and_spread_over_every_shard(
    redis_cluster: RedisClusterProcesses, cluster_client: Any
) -> None:
    clock = Clock()
    prefix = f"textnlp-test-{uuid.uuid4().hex[:8]}"
    first = WindowLimiter(cluster_client, prefix=prefix, clock=clock, sleep=clock.sleep)
    second = WindowLimiter(cluster_client, prefix=prefix, clock=clock, sleep=clock.sleep)
    models = [f"bedrock:model-{i}" for i in range(30)]
    limit = RateLimit(requests_per_minute=3, tokens_per_minute=1000)
    for model in models:
        await first.acquire(model, limit, 10)
        await second.acquire(model, limit, 10)
        await first.acquire(model, limit, 10)
    assert clock.slept == []
    await second.acquire(models[0], limit, 10)  # the fourth request waits for the next window
    assert clock.slept == [pytest.approx(50.0, abs=0.1)]
    window = int(clock.now // 60) - 1
    keys = [first.window_key(model, window) for model in models]
    assert redis_cluster.masters_serving(keys) == set(redis_cluster.ports)
    counts = cluster_client.hgetall(keys[1])
    assert counts == {b"req": b"3", b"tok": b"30"}


async def test_tokens_per_minute_and_max_wait(cluster_client: Any) -> None:
    clock = Clock()
    limiter = WindowLimiter(
        cluster_client,
        prefix=f"textnlp-test-{uuid.uuid4().hex[:8]}",
        clock=clock,
        sleep=clock.sleep,
        max_wait_s=5,
    )
    limit = RateLimit(tokens_per_minute=1000)
    await limiter.acquire("k", limit, 800)
    with pytest.raises(RateLimited):
        await limiter.acquire("k", limit, 300)
