"""Rate-limit buckets: idle ones expire (bounded memory), and a Redis outage is ridden out on
local buckets for a bounded time, then refused with 503."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from textnlp.adapters.buckets import Lane, MemoryBuckets, RedisBuckets
from textnlp.errors import ServiceUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_buckets_expire_once_they_are_full_again() -> None:
    clock = Clock()
    limiter = MemoryBuckets(clock, sweep_every_s=10)
    for n in range(1000):
        limiter.take(f"client-{n}", [Lane(1.0, 5)])  # each: 4 of 5 tokens left
    assert len(limiter) == 1000
    clock.now += 0.5  # none is full yet: a sweep keeps them all
    limiter.take("client-0", [Lane(1.0, 5)])
    clock.now += 10
    limiter.take("busy", [Lane(1.0, 5)])  # the sweep is due: every bucket full again goes
    assert len(limiter) == 1


def test_a_bucket_that_is_not_yet_full_is_kept_and_still_limits() -> None:
    clock = Clock()
    limiter = MemoryBuckets(clock, sweep_every_s=1)
    assert [limiter.take("slow", [Lane(0.01, 2)]) for _ in range(2)] == [0.0, 0.0]
    clock.now += 5  # refills 0.05 token; full only after 200 s
    limiter.take("other", [Lane(0.01, 2)])  # sweeps
    assert limiter.take("slow", [Lane(0.01, 2)]) > 0  # the empty bucket was not forgotten


def test_buckets_are_bounded_whatever_keys_clients_make_up() -> None:
    clock = Clock()
    limiter = MemoryBuckets(clock, max_buckets=100, sweep_every_s=3600)
    for n in range(10_000):
        limiter.take(f"made-up-{n}", [Lane(0.001, 3)])
    assert len(limiter) == 100
    # The least recently used go first: a key in use stays.
    limiter.take("made-up-9999", [Lane(0.001, 3)])
    for n in range(99):
        limiter.take(f"new-{n}", [Lane(0.001, 3)])
    limiter.take("made-up-9999", [Lane(0.001, 3)])
    assert limiter.take("made-up-9999", [Lane(0.001, 3)]) > 0  # its 3 tokens are spent


class DeadRedis:
    """A client whose server is away (or comes back when ``up`` is set)."""

    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    def register_script(self, _: str) -> Any:
        def script(keys: list[str], args: list[Any]) -> bytes:
            self.calls += 1
            if not self.up:
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Refused.")
            return b"0"

        return script


def test_redis_outage_uses_local_buckets_then_answers_503() -> None:
    clock, redis = Clock(), DeadRedis()
    limiter = RedisBuckets(redis, outage_window_s=60, retry_s=5, clock=clock)
    # Limits still hold during the outage, in this process.
    assert [limiter.take("user:a", [Lane(1.0, 3)]) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("user:a", [Lane(1.0, 3)]) > 0
    assert redis.calls == 1  # tried once, then not again before retry_s
    clock.now += 6
    limiter.take("user:b", [Lane(1.0, 3)])
    assert redis.calls == 2
    clock.now += 60  # past the window: refused, saying when to come back
    with pytest.raises(ServiceUnavailable) as refused:
        limiter.take("user:b", [Lane(1.0, 3)])
    assert refused.value.http_status == 503
    assert refused.value.details == {"dependency": "cache", "retry_after": 5}


def test_redis_coming_back_ends_the_outage() -> None:
    clock, redis = Clock(), DeadRedis()
    limiter = RedisBuckets(redis, outage_window_s=0, retry_s=5, clock=clock)
    with pytest.raises(ServiceUnavailable):  # a window of 0: fail closed at once
        limiter.take("user:a", [Lane(1.0, 3)])
    redis.up = True
    with pytest.raises(ServiceUnavailable):  # not retried before retry_s
        limiter.take("user:a", [Lane(1.0, 3)])
    clock.now += 5
    assert limiter.take("user:a", [Lane(1.0, 3)]) == 0.0
    assert limiter.take("user:a", [Lane(1.0, 3)]) == 0.0  # shared buckets again, every call
    assert redis.calls == 3
