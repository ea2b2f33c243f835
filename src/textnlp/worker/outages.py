"""Outages of the worker's dependencies, and waiting them out.

An outage is ``ServiceUnavailable`` (the database engine and the AWS adapters, SQS, S3,
DynamoDB and Secrets Manager, raise it for their drivers' connection failures and throttled or
failing answers; ``adapters.aws_outage``) or a Redis connection error (the response cache's
client raises its own). An outage is never a job's attempt: the worker logs one line, waits
with exponential backoff and jitter (so that a fleet of workers does not reconnect in step),
and tries the same step again; a job's message stays held by its heartbeat meanwhile, so its
receive count does not move. A stop (SIGTERM) ends the waiting at once: the outage reaches the
caller, which hands its message back without the receive counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_random,
)

from textnlp.errors import ServiceUnavailable, TextNLPError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: First wait after an outage, and the longest: a database failover takes 30 s or so.
FIRST_WAIT_S = 0.5
LONGEST_WAIT_S = 30.0


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means a dependency cannot be reached now (not the job's fault)."""
    if isinstance(exc, ServiceUnavailable):
        return True
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout):  # every pooled connection in use: wait, as for an outage
        return True
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # no redis client installed: no Redis outage either
        return False
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


def describe(exc: BaseException | None) -> str:
    """One line for the log."""
    if isinstance(exc, TextNLPError):
        return exc.message
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Patience:
    """Runs a step until it gets past an outage, or until ``stop`` is set."""

    def __init__(
        self,
        stop: asyncio.Event,
        *,
        first_s: float = FIRST_WAIT_S,
        longest_s: float = LONGEST_WAIT_S,
    ) -> None:
        self.stop = stop
        self.first_s = first_s
        self.longest_s = longest_s

    async def call(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """``await step()`` again after each outage; the outage itself once stopping."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_outage),
            # Doubling from first_s up to longest_s, plus up to first_s of jitter.
            wait=wait_exponential(multiplier=self.first_s, max=self.longest_s)
            + wait_random(0, self.first_s),
            stop=self._stopping,
            sleep=self._pause,
            before_sleep=lambda state: self._waiting(what, state),
            reraise=True,
        )

        async def attempt() -> T:  # a coroutine function: tenacity awaits only those
            return await step()

        result: T = await retrying(attempt)
        tries = int(retrying.statistics.get("attempt_number", 1))
        if tries > 1:
            log.info("%s: reachable again after %d tries", what, tries)
        return result

    async def run(self, what: str, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a thread (it blocks on I/O), with ``call``'s patience."""
        return await self.call(what, lambda: asyncio.to_thread(function, *args))

    def _stopping(self, _: RetryCallState) -> bool:
        return self.stop.is_set()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up for a stop: a SIGTERM must not wait out a backoff."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def _waiting(self, what: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        pause = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s: %s; trying again in %.1f s (try %d)",
            what,
            describe(error),
            pause,
            state.attempt_number,
        )
