"""Holding a job's message: the heartbeat that keeps it invisible while the job runs (or waits
out an outage), the hand-back that gives it up without the delivery counting, and a wait that
a stop cuts short."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from textnlp.adapters.queue import JobQueue, QueueMessage
from textnlp.services.job_runs import JobRuns
from textnlp.worker.outages import describe, is_outage

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How soon a heartbeat that could not extend its message tries again: the visibility runs
#: out meanwhile, and a queue that is back should see the extension before it does.
RETRY_EXTEND_S = 1.0
#: Longest wait for an extension in flight when the heartbeat stops.
STOP_WAIT_S = 5.0


class Heartbeat:
    """Extends a message every ``interval_s`` until stopped.

    ``stop`` returns once no extension is in flight (or after ``STOP_WAIT_S``): an extension
    that landed after a release or a hand-back would hide the message again for a whole
    visibility timeout.
    """

    def __init__(self, queue: JobQueue, message: QueueMessage, interval_s: float) -> None:
        self.queue = queue
        self.message = message
        self.interval_s = interval_s
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            # An extension stuck on a dead endpoint is not waited for long: the worst it can
            # do is hide a released message for one visibility timeout.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_S)

    async def _beat(self) -> None:
        pause = self.interval_s
        failing = False  # an outage is said once, and its end once, not every retry
        while not await _wait(self._stopped, pause):
            try:
                await asyncio.to_thread(
                    self.queue.extend, self.message, self.queue.visibility_timeout_s
                )
                pause = self.interval_s
                if failing:
                    log.info("extending message %s again", self.message.id)
                failing = False
            except Exception as exc:
                if not failing or not is_outage(exc):
                    log.warning(
                        "could not extend message %s: %s (retrying every %.0f s)",
                        self.message.id,
                        describe(exc),
                        min(self.interval_s, RETRY_EXTEND_S),
                        exc_info=not is_outage(exc),
                    )
                failing = True
                pause = min(self.interval_s, RETRY_EXTEND_S)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` was set within ``seconds``."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def hand_back(
    queue: JobQueue, message: QueueMessage, runs: JobRuns, job_id: str | None
) -> None:
    """Give ``message`` back without the delivery counting, and the job's attempt back when
    one was counted (``job_id``). The worker is stopping: one try each; a failure costs a
    receive, nothing more (the message reappears after its visibility timeout)."""
    try:
        if job_id is not None:
            await asyncio.to_thread(runs.give_back_attempt, job_id)
        await asyncio.to_thread(queue.hand_back, message)
    except Exception as exc:
        log.warning(
            "message %s: not handed back (%s); it reappears after its visibility timeout",
            message.id,
            describe(exc),
        )


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or None when ``stop`` is set first (a thread behind ``work`` runs
    on; its result is dropped)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return None
