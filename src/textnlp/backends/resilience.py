"""Retries, the circuit breaker and the rate limit around every call to a remote model.

* ``RetryPolicy``: exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS
  Architecture Blog) for errors that may pass on a retry (``BackendError.retryable``: throttling,
  5xx, timeouts) and nothing else. SDK-level retries are switched off so that this is the one
  place that retries.
* ``CircuitBreaker``: after ``failure_threshold`` consecutive failures that say the backend is
  down (unavailable, timeouts, rejected credentials) the circuit opens and calls fail at once
  with ``BackendUnavailable`` until ``reset_after_s`` has passed (its message says when, never
  the last failure, which was another caller's: that goes to the log and the health report);
  then one trial call is let through (half-open) and its outcome closes or reopens the
  circuit. ``CircuitRegistry`` keeps one breaker per backend and model so that
  ``/admin/health`` can show them.
* ``Resilience`` puts the three together for one backend; ``stream`` retries only until the
  first delta arrived (a half-sent stream cannot be replayed).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from textnlp.backends.ratelimit import ModelRateLimiter, RateLimit
from textnlp.errors import AuthFailed, BackendError, BackendUnavailable, Timeout

log = logging.getLogger(__name__)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
CircuitStateName = Literal["closed", "open", "half_open"]

#: Failures that say the backend itself is unwell (and count towards opening the circuit).
HEALTH_FAILURES: tuple[type[BackendError], ...] = (BackendUnavailable, Timeout, AuthFailed)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class CircuitState:
    """What ``/admin/health`` shows for one backend."""

    name: str
    state: CircuitStateName
    consecutive_failures: int
    last_error: str
    retry_in_s: float

    @property
    def available(self) -> bool:
        return self.state != "open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._last_error = ""

    def before_call(self, *, backend: str = "", model: str = "") -> None:
        """Raise ``BackendUnavailable`` while the circuit is open."""
        with self._lock:
            if self._opened_at is None:
                return
            waited = self._clock() - self._opened_at
            if waited >= self.reset_after_s and not self._trial_running:
                self._trial_running = True  # half-open: this call is the trial
                return
            retry_in = max(0.0, self.reset_after_s - waited)
        # The last error was another caller's (their words, an endpoint's address): this
        # caller reads that the circuit is open and when it is tried again; the error went to
        # the log when it opened the circuit, and administrators read it in the health report.
        raise BackendUnavailable(
            f"{self.name} is unavailable: its circuit is open after {self._failures} "
            f"consecutive failures; next try in {retry_in:.0f}s",
            backend=backend,
            model=model,
        )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self, error: BaseException) -> None:
        if not isinstance(error, HEALTH_FAILURES):
            with self._lock:
                self._trial_running = False
            return
        with self._lock:
            self._failures += 1
            self._last_error = f"{type(error).__name__}: {error}"[:200]
            opens = self._trial_running or self._failures >= self.failure_threshold
            if opens:
                self._opened_at = self._clock()
            self._trial_running = False
            failures = self._failures
        if opens:
            log.warning(
                "circuit %s open after %d consecutive failures (last: %s); next try in %.0fs",
                self.name,
                failures,
                f"{type(error).__name__}: {error}",
                self.reset_after_s,
            )

    def state(self) -> CircuitState:
        with self._lock:
            if self._opened_at is None:
                name: CircuitStateName = "closed"
                retry_in = 0.0
            else:
                waited = self._clock() - self._opened_at
                retry_in = max(0.0, self.reset_after_s - waited)
                name = "half_open" if retry_in == 0.0 else "open"
            return CircuitState(self.name, name, self._failures, self._last_error, retry_in)


@dataclass
class CircuitRegistry:
    """One breaker per backend/model in this process; the health endpoint reads ``states()``."""

    failure_threshold: int = 5
    reset_after_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(
                name,
                failure_threshold=self.failure_threshold,
                reset_after_s=self.reset_after_s,
                clock=self.clock,
            )
            self._breakers[name] = breaker
        return breaker

    def states(self) -> dict[str, CircuitState]:
        return {name: breaker.state() for name, breaker in sorted(self._breakers.items())}


class Resilience:
    """Rate limit, circuit and retries for the calls of one backend."""

    def __init__(
        self,
        *,
        backend: str,
        model: str,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: ModelRateLimiter | None = None,
        limit: RateLimit | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.model = model
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(f"{backend}:{model}")
        self.limiter = limiter if limiter is not None else ModelRateLimiter()
        self.limit = limit or RateLimit()
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def _admit(self, tokens: int) -> None:
        self.breaker.before_call(backend=self.backend, model=self.model)
        await self.limiter.acquire(f"{self.backend}:{self.model}", self.limit, tokens)

    def _retrying(self) -> AsyncRetrying:
        """tenacity's loop: retryable ``BackendError``s only, ``policy.max_attempts`` in all,
        the policy's jittered backoff (at least a ``retry_after`` the backend gave, capped)."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            retry=retry_if_exception(lambda e: isinstance(e, BackendError) and e.retryable),
            wait=self._delay,
            sleep=self._sleep,
            reraise=True,
        )

    def _delay(self, state: RetryCallState) -> float:
        delay = self.policy.delay(state.attempt_number, self._rng)
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = error.details.get("retry_after") if isinstance(error, BackendError) else None
        if isinstance(retry_after, int | float):
            delay = max(delay, min(float(retry_after), self.policy.max_delay_s))
        return delay

    async def call(self, operation: Callable[[], Awaitable[T]], *, tokens: int = 0) -> T:
        async for attempt in self._retrying():
            await self._admit(tokens)  # an open circuit or a rate limit is not retried here
            with attempt:
                try:
                    result = await operation()
                except BackendError as error:
                    self.breaker.record_failure(error)
                    raise
                self.breaker.record_success()
        return result

    async def stream(
        self, open_stream: Callable[[], AsyncGenerator[T, None]], *, tokens: int = 0
    ) -> AsyncIterator[T]:
        async for attempt in self._retrying():
            await self._admit(tokens)
            with attempt:  # retried until the first item arrived: a half-sent stream is final
                iterator = open_stream()
                try:
                    first = await anext(iterator)
                except StopAsyncIteration:
                    self.breaker.record_success()
                    return
                except BackendError as error:
                    await iterator.aclose()
                    self.breaker.record_failure(error)
                    raise
        try:
            yield first
            async for item in iterator:
                yield item
        except BackendError as error:
            self.breaker.record_failure(error)
            raise
        else:
            self.breaker.record_success()
        finally:
            await iterator.aclose()
