"""The aws-profile adapters against the real Redis: response cache, rate limits, cache clear."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import free_port
from tests.support.api import Api, make_settings, start_api
from textnlp.adapters.buckets import Lane, RedisBuckets
from textnlp.adapters.cache.redis import RedisCache
from textnlp.adapters.redis_client import redis_client
from textnlp.config import load_settings
from textnlp.errors import ServiceUnavailable


@pytest.fixture
def prefix() -> str:
    return f"textnlp-test:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    """The app's client of the machine's Redis (``redis_client`` from settings)."""
    made = redis_client(load_settings(environ={}, cache={"url": redis_url}))
    yield made
    made.close()


def test_redis_cache_round_trips_and_clears_only_its_prefix(client: Any, prefix: str) -> None:
    cache = RedisCache(client, prefix)
    other = RedisCache(client, prefix.replace("textnlp-test:", "textnlp-other:"))
    try:
        cache.set("a", b"1", ttl_s=60)
        other.set("b", b"2", ttl_s=60)
        assert cache.get("a") == b"1" and cache.ping()
        assert cache.clear() == 1
        assert other.get("b") == b"2"
    finally:
        other.clear()
    cache.close()  # the client is shared: closing the cache leaves it open
    assert client.ping()


def test_an_unreachable_cache_is_a_service_unavailable(prefix: str) -> None:
    """It was redis's own ConnectionError: a traceback in the CLI, a 500 in the API."""
    dead = redis_client(
        load_settings(environ={}, cache={"url": f"redis://127.0.0.1:{free_port()}/0"})
    )
    cache = RedisCache(dead, prefix)
    try:
        for call in (lambda: cache.get("a"), lambda: cache.set("a", b"1", 60), cache.clear):
            with pytest.raises(ServiceUnavailable, match="cannot reach the cache") as caught:
                call()
            assert caught.value.details["dependency"] == "cache"
        assert cache.ping() is False
    finally:
        dead.close()


def test_redis_token_bucket_is_shared(redis_url: str, prefix: str) -> None:
    settings = load_settings(environ={}, cache={"url": redis_url})
    clients = [redis_client(settings), redis_client(settings)]  # two API tasks
    first, second = (RedisBuckets(client) for client in clients)
    key = prefix + "bucket"
    try:
        waits = [limiter.take(key, [Lane(1.0, 3)]) for limiter in (first, second, first, second)]
        assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0
    finally:
        for client in clients:
            client.close()


@pytest.fixture(scope="module")
def redis_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from tests.conftest import REDIS_URL, port_open, require

    require(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    settings = make_settings(tmp_path_factory.mktemp("redis-api"), cache={"url": REDIS_URL})
    yield from start_api(settings)


def test_app_on_redis_health_and_cache_clear(redis_api: Api) -> None:
    health = redis_api.client.get("/api/v1/admin/health").json()
    assert health["checks"]["cache"]["status"] == "ok"
    platform = redis_api.client.app.state.platform  # type: ignore[attr-defined]
    store = platform.response_cache.store
    assert isinstance(store, RedisCache) and platform.redis.ping()
    store.set("probe", b"x", ttl_s=60)
    cleared = redis_api.client.post(
        "/api/v1/admin/cache/clear", headers=redis_api.headers("admin")
    ).json()
    assert cleared["cleared"] >= 1 and store.get("probe") is None
