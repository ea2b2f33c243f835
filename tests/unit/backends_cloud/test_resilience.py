"""Retries, backoff, the circuit, the in-memory rate limiter, prices and spending caps, with a
fault-injecting operation and fake clocks."""

from __future__ import annotations

import logging
import random

import pytest

from textnlp.adapters.buckets import MemoryBuckets
from textnlp.api.errors import public_body
from textnlp.backends.pricing import CappedBackend, Price, PriceTable, SpendingCap
from textnlp.backends.ratelimit import ModelRateLimiter, RateLimit
from textnlp.backends.resilience import CircuitBreaker, CircuitRegistry, Resilience, RetryPolicy
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationParams, GenerationRequest, Usage
from textnlp.errors import (
    AuthFailed,
    BackendUnavailable,
    InvalidRequest,
    QuotaExceeded,
    RateLimited,
    Timeout,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Faulty:
    """Fails with the queued errors, then answers ``ok``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def resilience(clock: Clock, attempts: int = 4, threshold: int = 5) -> Resilience:
    return Resilience(
        backend="fake",
        model="m",
        policy=RetryPolicy(max_attempts=attempts, base_delay_s=1.0, max_delay_s=8.0),
        breaker=CircuitBreaker(
            "fake:m", failure_threshold=threshold, reset_after_s=30, clock=clock
        ),
        sleep=clock.sleep,
        rng=random.Random(0),
    )


async def test_retries_throttling_and_5xx_with_growing_jittered_backoff() -> None:
    clock = Clock()
    operation = Faulty(RateLimited("429"), BackendUnavailable("503"), Timeout("slow"))
    assert await resilience(clock).call(operation) == "ok"
    assert operation.calls == 4
    ceilings = [1.0, 2.0, 4.0]
    assert all(0 <= s <= c for s, c in zip(clock.slept, ceilings, strict=True))
    assert len(set(clock.slept)) == 3  # jittered, not fixed


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=5.0)
    rng = random.Random(1)
    assert max(policy.delay(9, rng) for _ in range(200)) <= 5.0


@pytest.mark.parametrize("error", [InvalidRequest("bad"), AuthFailed("key")])
async def test_client_errors_are_not_retried(error: Exception) -> None:
    clock = Clock()
    operation = Faulty(error)
    with pytest.raises(type(error)):
        await resilience(clock).call(operation)
    assert operation.calls == 1 and clock.slept == []


async def test_retry_after_is_honoured() -> None:
    clock = Clock()
    operation = Faulty(RateLimited("429", retry_after=6.0))
    await resilience(clock).call(operation)
    assert clock.slept[0] >= 6.0


async def test_circuit_opens_then_half_opens_then_closes() -> None:
    clock = Clock()
    guard = resilience(clock, attempts=1, threshold=2)
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            await guard.call(Faulty(BackendUnavailable("down")))
    assert guard.breaker.state().state == "open"
    never = Faulty()
    with pytest.raises(BackendUnavailable, match="consecutive failures"):
        await guard.call(never)
    assert never.calls == 0
    clock.now += 31
    assert guard.breaker.state().state == "half_open"
    # The trial fails: open again at once.
    with pytest.raises(Timeout):
        await guard.call(Faulty(Timeout("slow")))
    assert guard.breaker.state().state == "open"
    clock.now += 31
    assert await guard.call(Faulty()) == "ok"
    assert guard.breaker.state().state == "closed"


async def test_an_open_circuit_tells_the_next_caller_when_not_the_last_callers_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    guard = resilience(clock, attempts=1, threshold=2)
    # Another caller's failures: their words, and where the model server lives.
    theirs = "cannot connect to http://10.0.4.7:8080/invocations for alice@example.com"
    with caplog.at_level(logging.WARNING, logger="textnlp.backends.resilience"):
        for _ in range(2):
            with pytest.raises(BackendUnavailable):
                await guard.call(Faulty(BackendUnavailable(theirs)))
    clock.now += 10
    with pytest.raises(BackendUnavailable) as refused:
        await guard.call(Faulty())
    told = str(public_body(refused.value))
    assert "10.0.4.7" not in told and "alice@example.com" not in told, told
    assert refused.value.message == (
        "fake:m is unavailable: its circuit is open after 2 consecutive failures; next try in 20s"
    )
    # The operators read what opened it; the health report keeps it for administrators.
    assert theirs in caplog.text
    assert theirs in guard.breaker.state().last_error


async def test_client_errors_do_not_open_the_circuit() -> None:
    clock = Clock()
    guard = resilience(clock, attempts=1, threshold=2)
    for _ in range(3):
        with pytest.raises(InvalidRequest):
            await guard.call(Faulty(InvalidRequest("bad")))
    assert guard.breaker.state().state == "closed"


async def test_stream_retries_only_before_the_first_item() -> None:
    clock = Clock()
    guard = resilience(clock)
    attempts = 0

    async def flaky():  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise BackendUnavailable("503")
        yield "a"
        if attempts == 2:
            raise BackendUnavailable("cut")
        yield "b"

    items = []
    with pytest.raises(BackendUnavailable, match="cut"):
        async for item in guard.stream(flaky):
            items.append(item)
    assert items == ["a"] and attempts == 2


def test_registry_reports_states() -> None:
    registry = CircuitRegistry(failure_threshold=1)
    registry.get("bedrock:claude").record_failure(BackendUnavailable("x"))
    registry.get("openai:vllm")
    states = registry.states()
    assert states["bedrock:claude"].state == "open" and not states["bedrock:claude"].available
    assert states["openai:vllm"].state == "closed"


async def test_in_memory_limiter_requests_per_minute() -> None:
    clock = Clock()
    limiter = ModelRateLimiter(MemoryBuckets(clock), sleep=clock.sleep)
    limit = RateLimit(requests_per_minute=2)
    for _ in range(3):
        await limiter.acquire("k", limit, 0)
    assert clock.slept and sum(clock.slept) == pytest.approx(30.0)  # one request refills in 30s


async def test_in_memory_limiter_tokens_per_minute_and_max_wait() -> None:
    clock = Clock()
    limiter = ModelRateLimiter(MemoryBuckets(clock), sleep=clock.sleep, max_wait_s=10)
    limit = RateLimit(tokens_per_minute=600)
    await limiter.acquire("k", limit, 600)
    with pytest.raises(RateLimited):
        await limiter.acquire("k", limit, 300)  # needs 30s of refill
    await limiter.acquire("other", limit, 600)  # keys are independent


async def test_a_request_refused_on_tokens_takes_no_request() -> None:
    clock = Clock()
    limiter = ModelRateLimiter(MemoryBuckets(clock), sleep=clock.sleep, max_wait_s=1)
    limit = RateLimit(requests_per_minute=2, tokens_per_minute=600)
    await limiter.acquire("k", limit, 600)
    with pytest.raises(RateLimited):  # the tokens lane is empty
        await limiter.acquire("k", limit, 600)
    # The second request of the minute is still there: the refusal took nothing.
    await limiter.acquire("k", limit, 0)
    assert clock.slept == []
    with pytest.raises(RateLimited):  # and now it is spent
        await limiter.acquire("k", limit, 0)


def test_price_table_and_cost() -> None:
    table = PriceTable({"anthropic.claude-v2": Price(0.008, 0.024)})
    spec = ModelSpec(id="claude", backend="bedrock", endpoint="anthropic.claude-v2")
    assert table.cost(spec, Usage(prompt_tokens=1000, completion_tokens=500)) == pytest.approx(0.02)
    assert table.cost(ModelSpec(id="x", backend="openai"), Usage()) is None


def test_spending_cap() -> None:
    cap = SpendingCap(1.0, name="job 7")
    cap.check(0.5)
    cap.add(0.75)
    with pytest.raises(QuotaExceeded, match="job 7"):
        cap.check(0.5)
    cap.reserve(0.2)
    with pytest.raises(QuotaExceeded):
        cap.reserve(0.1)
    cap.settle(0.2, 0.05)
    assert cap.spent_usd == pytest.approx(0.8) and cap.remaining_usd == pytest.approx(0.2)


async def test_capped_backend_stops_before_the_cap() -> None:
    from textnlp.backends.base import PerRequestBackend

    class Fixed(PerRequestBackend):
        name = "fixed"
        calls = 0

        async def complete(self, request: GenerationRequest) -> Completion:
            Fixed.calls += 1
            usage = Usage(prompt_tokens=10, completion_tokens=10, cost_usd=0.3)
            return Completion(text="x", finish_reason="stop", model="m", usage=usage)

        def stream(self, request):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def count_tokens(self, text: str) -> int:
            return 10

    spec = ModelSpec(id="m", backend="fixed")
    prices = PriceTable({"m": Price(10.0, 10.0)})  # worst case: (10 + 20) * 0.01 = 0.3
    capped = CappedBackend(Fixed(spec), SpendingCap(1.0), prices)
    request = GenerationRequest(prompt="x", params=GenerationParams(max_tokens=20))
    for _ in range(3):
        await capped.generate_one(request)
    with pytest.raises(QuotaExceeded):
        await capped.generate_one(request)
    assert Fixed.calls == 3
