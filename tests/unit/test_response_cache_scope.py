"""Owner-scoped response cache: a user's hit is their own; dataset runs keep shared keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fake_backend import FakeBackend
from textnlp.bootstrap import Platform
from textnlp.config import load_settings
from textnlp.domain import Completion, GenerationParams, GenerationRequest
from textnlp.errors import ServiceUnavailable
from textnlp.generation.cache import (
    CachedBackend,
    OwnerScopedCache,
    SqliteResponseCache,
    cache_key,
    owner_key,
)

REQUEST = GenerationRequest.chat(
    "my private question", params=GenerationParams(max_tokens=4, temperature=0.0, seed=1)
)


def test_owner_keys_differ_per_owner_and_from_the_shared_key() -> None:
    key = cache_key("fake:1", REQUEST)
    assert owner_key(key, "alice") != owner_key(key, "bob")
    assert owner_key(key, "alice") != key
    assert owner_key(key, "alice") == owner_key(key, "alice")


async def test_one_owners_hit_is_not_anothers(tmp_path: Path) -> None:
    shared = SqliteResponseCache(tmp_path / "cache.sqlite")
    backend = FakeBackend()
    alice, bob = OwnerScopedCache(shared, "alice"), OwnerScopedCache(shared, "bob")
    assert (await CachedBackend(backend, alice).generate_one(REQUEST)).cached is False
    assert (await CachedBackend(backend, alice).generate_one(REQUEST)).cached is True
    assert (await CachedBackend(backend, bob).generate_one(REQUEST)).cached is False
    # Unscoped runs (the CLI's and the workers' datasets) share their own keys.
    assert (await CachedBackend(backend, shared).generate_one(REQUEST)).cached is False
    assert (await CachedBackend(backend, shared).generate_one(REQUEST)).cached is True
    assert backend.calls == 3
    alice.close()  # a view: the shared cache stays open
    assert len(shared) == 3
    shared.close()


def test_a_grammar_is_part_of_the_key_and_its_absence_keeps_earlier_keys() -> None:
    """Keys written before requests had a grammar stay valid: a request without one hashes
    as it did then (the pinned digest); with one, the grammar shapes the answer, so it counts."""
    assert cache_key("fake:1", REQUEST) == (
        "f4d246d3cd28b0951c40f9448e28b057a28231730fc4420bdd839378ff0261f0"
    )
    constrained = REQUEST.model_copy(update={"grammar": 'root ::= "yes" | "no"'})
    assert cache_key("fake:1", constrained) != cache_key("fake:1", REQUEST)


def test_a_wrapper_keeps_to_grammars_as_its_inner_backend_does(tmp_path: Path) -> None:
    inner = FakeBackend()
    cache = SqliteResponseCache(tmp_path / "cache.sqlite")
    assert CachedBackend(inner, cache).grammars is False
    inner.grammars = True
    assert CachedBackend(inner, cache).grammars is True
    cache.close()


async def test_an_unreachable_cache_is_skipped_not_an_outage_of_generation() -> None:
    """Redis failing over: a seeded request (every job record has a seed) is answered by the
    model as on a miss, instead of a 503 and a job that waits for the cache."""
    import redis

    from tests.conftest import free_port
    from textnlp.adapters.cache.completions import CompletionCache
    from textnlp.adapters.cache.redis import RedisCache

    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens
    backend = FakeBackend()
    cached = CachedBackend(backend, CompletionCache(RedisCache(client), ttl_s=60))
    first = await cached.generate_one(REQUEST)
    second = await cached.generate_one(REQUEST)
    assert (first.cached, second.cached, backend.calls) == (False, False, 2)
    assert first.text == second.text  # the same seed, the same answer


async def test_a_failing_over_redis_is_skipped_too() -> None:
    """During a failover Redis answers READONLY (a demoted primary), CLUSTERDOWN or TRYAGAIN,
    which are not connection errors: the answer the model made must not fail on its put."""
    from redis.exceptions import ClusterDownError, ReadOnlyError, TryAgainError

    from textnlp.adapters.cache.completions import CompletionCache
    from textnlp.adapters.cache.redis import RedisCache

    for error in (ReadOnlyError, ClusterDownError, TryAgainError):

        class FailingOver:
            raises = error

            def get(self, key: str) -> None:
                return None  # a replica still reads

            def set(self, *args: object, **kwargs: object) -> None:
                raise self.raises("You can't write against a read only replica.")

        backend = FakeBackend()
        cached = CachedBackend(backend, CompletionCache(RedisCache(FailingOver()), ttl_s=60))
        assert (await cached.generate_one(REQUEST)).cached is False
        assert backend.calls == 1


def test_a_failed_cache_is_not_asked_again_for_its_pause() -> None:
    """A blackholed Redis host costs a connect timeout per command, twice per seeded request:
    after one failure the response cache fails at once for ``pause_s``, then asks again."""
    import socket

    import redis

    from textnlp.adapters.cache.redis import RedisCache

    silent = socket.socket()  # accepts connections and never answers: a host that hangs
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    now = [100.0]
    client = redis.Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.2)
    cache = RedisCache(client, pause_s=5.0, clock=lambda: now[0])

    def connections() -> int:
        silent.settimeout(0.05)
        accepted = 0
        try:
            while True:
                accepted += 1
                silent.accept()[0].close()
        except TimeoutError:
            return accepted - 1

    try:
        with pytest.raises(ServiceUnavailable, match="cannot reach"):
            cache.get("a")
        assert connections() >= 1
        now[0] += 4.9
        for call in (lambda: cache.get("a"), lambda: cache.set("a", b"1", 60)):
            with pytest.raises(ServiceUnavailable, match="not asked again"):
                call()
        assert connections() == 0  # Redis was not asked
        now[0] += 0.2
        with pytest.raises(ServiceUnavailable, match="cannot reach"):
            cache.get("a")
        assert connections() >= 1
    finally:
        client.close()
        silent.close()


@pytest.mark.parametrize("caching", [True, False])
def test_the_generation_service_clears_the_cache_the_admin_pages_share(
    caching: bool, tmp_path: Path
) -> None:
    """The API's and the console's clear both go through ``GenerationService.clear_cache``."""
    settings = load_settings(home=tmp_path)
    settings = settings.model_copy(
        update={"generation": settings.generation.model_copy(update={"response_cache": caching})}
    )
    with Platform(settings) as platform:
        cache = platform.response_cache
        if cache is not None:
            completion = Completion(text="kept", finish_reason="stop", model="fake:1")
            cache.put(cache_key("fake:1", REQUEST), completion)
        assert platform.generation.clear_cache() == (1 if caching else 0)
        assert platform.generation.clear_cache() == 0
