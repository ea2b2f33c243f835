"""The aws-profile adapters against the real Redis: response cache, rate limits, cache clear."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.api.conftest import Api, make_settings, start_api
from textnlp.adapters.cache.redis import RedisCache
from textnlp.auth.ratelimit import RedisRateLimiter


@pytest.fixture
def prefix() -> str:
    return f"textnlp-test:{uuid.uuid4().hex[:8]}:"


def test_redis_cache_round_trips_and_clears_only_its_prefix(redis_url: str, prefix: str) -> None:
    cache = RedisCache.from_url(redis_url, prefix)
    other = RedisCache.from_url(redis_url, prefix.replace("textnlp-test:", "textnlp-other:"))
    try:
        cache.set("a", b"1", ttl_s=60)
        other.set("b", b"2", ttl_s=60)
        assert cache.get("a") == b"1" and cache.ping()
        assert cache.clear() == 1
        assert other.get("b") == b"2"
    finally:
        other.clear()
        cache.close()
        other.close()


def test_redis_token_bucket_is_shared(redis_url: str, prefix: str) -> None:
    first = RedisRateLimiter.from_url(redis_url)
    second = RedisRateLimiter.from_url(redis_url)
    key = prefix + "bucket"
    try:
        waits = [limiter.acquire(key, 1.0, 3) for limiter in (first, second, first, second)]
        assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0
    finally:
        first.close()
        second.close()


@pytest.fixture(scope="module")
def redis_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from tests.conftest import REDIS_URL, port_open, require

    require(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    settings = make_settings(tmp_path_factory.mktemp("redis-api"), cache={"url": REDIS_URL})
    yield from start_api(settings)


def test_app_on_redis_health_and_cache_clear(redis_api: Api) -> None:
    health = redis_api.client.get("/api/v1/admin/health").json()
    assert health["checks"]["cache"]["status"] == "ok"
    store = redis_api.client.app.state.cache  # type: ignore[attr-defined]
    assert isinstance(store, RedisCache)
    store.set("probe", b"x", ttl_s=60)
    cleared = redis_api.client.post(
        "/api/v1/admin/cache/clear", headers=redis_api.headers("admin")
    ).json()
    assert cleared["cleared"] >= 1 and store.get("probe") is None
