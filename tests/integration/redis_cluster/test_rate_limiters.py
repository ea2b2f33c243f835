"""The token buckets' Lua script on a Redis Cluster, for the API's limits and the models':
shared budgets, keys on every shard, and no CROSSSLOT (each call touches one key)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.redis_cluster.conftest import cluster_settings
from tests.support.redis_cluster import RedisClusterProcesses
from textnlp.adapters.buckets import Lane, RedisBuckets
from textnlp.adapters.redis_client import redis_client
from textnlp.backends.ratelimit import ModelRateLimiter, RateLimit
from textnlp.errors import RateLimited


class Slept(Exception):
    """Raised instead of sleeping: the wait is what a test looks at."""


def test_token_buckets_are_shared_by_two_clients_on_every_shard(
    redis_cluster: RedisClusterProcesses, cluster_client: Any, prefix: str
) -> None:
    second_client = redis_client(cluster_settings(redis_cluster.url))
    first, second = RedisBuckets(cluster_client), RedisBuckets(second_client)
    users = [f"{prefix}user-{i}" for i in range(30)]
    try:
        for user in users:
            waits = [
                limiter.take(user, [Lane(1.0, 3)]) for limiter in (first, second, first, second)
            ]
            assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0
    finally:
        second_client.close()
    keys = [f"textnlp:rl:{user}" for user in users]
    assert redis_cluster.masters_serving(keys) == set(redis_cluster.ports)


async def test_model_buckets_are_shared_and_spread_over_every_shard(
    redis_cluster: RedisClusterProcesses, cluster_client: Any
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        raise Slept

    prefix = f"textnlp-test-{uuid.uuid4().hex[:8]}:"
    second_client = redis_client(cluster_settings(redis_cluster.url))
    first, second = (
        ModelRateLimiter(RedisBuckets(client, prefix), sleep=sleep)
        for client in (cluster_client, second_client)
    )
    models = [f"bedrock:model-{i}" for i in range(30)]
    limit = RateLimit(requests_per_minute=3, tokens_per_minute=1000)
    try:
        for model in models:
            await first.acquire(model, limit, 10)
            await second.acquire(model, limit, 10)
            await first.acquire(model, limit, 10)
        assert waits == []
        with pytest.raises(Slept):  # the fourth request waits for one to refill
            await second.acquire(models[0], limit, 10)
    finally:
        second_client.close()
    assert waits == [pytest.approx(20.0, abs=1.0)]
    keys = [f"{prefix}model:{model}" for model in models]
    assert redis_cluster.masters_serving(keys) == set(redis_cluster.ports)
    lanes = cluster_client.hgetall(keys[1])  # requests, tokens: what is left of each
    assert float(lanes[b"l1"]) == pytest.approx(0.0, abs=0.5)
    assert float(lanes[b"l2"]) == pytest.approx(970.0, abs=20)


async def test_tokens_per_minute_and_max_wait(cluster_client: Any) -> None:
    buckets = RedisBuckets(cluster_client, f"textnlp-test-{uuid.uuid4().hex[:8]}:")
    limiter = ModelRateLimiter(buckets, max_wait_s=5)
    limit = RateLimit(tokens_per_minute=1000)
    await limiter.acquire("k", limit, 800)
    with pytest.raises(RateLimited):
        await limiter.acquire("k", limit, 300)
