"""A stopping worker (SIGTERM, Ctrl-C) lets go of its job within seconds, not a chunk.

It took a full chunk of records (32 by default, minutes on a slow model) to stop, past the
30 s after which ECS kills a task, and a second Ctrl-C did nothing. The model here (``gated``)
answers only as many requests as the test allows; the others stay in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from tests.support.job_backends import GatedBackend
from tests.support.platform import run_worker
from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService
from textnlp.worker import Worker, WorkerOptions, runner

ALICE = Owner(id="alice")
CONCURRENCY = 4


@pytest.fixture
def four_at_once(settings: Settings) -> Settings:
    """Four records in flight; chunks of 8 (the conftest's)."""
    generation = settings.generation.model_copy(update={"concurrency": CONCURRENCY})
    return settings.model_copy(update={"generation": generation})


def submit(jobs: JobService) -> str:
    spec = {"template": "product-review", "count": 20, "model": "gated"}
    return jobs.submit(ALICE, JobSpec.model_validate(spec)).id


def stop_worker(settings: Settings, stopping: Callable[[Worker], None]) -> None:
    """A worker that runs until five records are finished and four more wait in flight
    (fewer than a chunk), then is stopped by ``stopping``; it must exit (the 30 s is only a
    hang's limit)."""

    async def go() -> None:
        async with Platform(settings) as platform:
            worker = Worker(platform, WorkerOptions(wait_s=0.1))
            running = asyncio.create_task(worker.run())
            while GatedBackend.answered < 5 or GatedBackend.waiting < CONCURRENCY:
                await asyncio.sleep(0.01)
            stopping(worker)
            done, _ = await asyncio.wait({running}, timeout=30)
            if not done:
                GatedBackend.allowed = 1000  # let it reach its checkpoint, and end
                await asyncio.wait_for(running, 60)
                pytest.fail("the worker did not stop within 30 s")

    asyncio.run(go())


def stored(jobs: JobService, job_id: str) -> list[int]:
    return [r.index for r in jobs.store.iter_records(job_id, ok_only=False)]


def handed_back(jobs: JobService, job_id: str) -> None:
    """The job's message is visible again at once, its delivery and attempt not counted."""
    row = jobs.store.get(job_id)
    assert row is not None and row.state == "running" and row.attempts == 0
    again = jobs.queues.generation.receive(1)
    assert len(again) == 1 and again[0].receive_count == 1
    jobs.queues.generation.release(again[0])


def finishes_with_every_record_once(settings: Settings, jobs: JobService, job_id: str) -> None:
    GatedBackend.reset(allowed=1000)
    run_worker(settings)
    assert jobs.status(ALICE, job_id).state == "succeeded"
    assert stored(jobs, job_id) == list(range(20))
    assert GatedBackend.answered == 15  # the five stored ones were not made again
    result = jobs.results(ALICE, job_id)
    rows = jobs.storage.get_bytes(result.key).decode().strip().splitlines()
    assert len(rows) == 20


def test_a_stop_mid_chunk_stores_the_finished_records_and_hands_the_job_back(
    four_at_once: Settings, jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No record finishes after the stop: the records in flight are cancelled after the
    grace, the five finished ones are stored (not a chunk yet), and the message goes back."""
    monkeypatch.setattr(runner, "STOP_GRACE_S", 0.2)
    job_id = submit(jobs)
    GatedBackend.reset(allowed=5)
    stop_worker(four_at_once, Worker.request_stop)
    assert stored(jobs, job_id) == [0, 1, 2, 3, 4]
    assert GatedBackend.cancelled == CONCURRENCY
    handed_back(jobs, job_id)
    finishes_with_every_record_once(four_at_once, jobs, job_id)


def test_a_stop_ends_the_run_at_the_next_record(
    four_at_once: Settings, jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One more record finishes after the stop: it is stored, and it ends the run (the other
    records in flight are cancelled) long before the grace would."""
    monkeypatch.setattr(runner, "STOP_GRACE_S", 3600.0)
    job_id = submit(jobs)
    GatedBackend.reset(allowed=5)

    def stop_then_one_more(worker: Worker) -> None:
        worker.request_stop()
        GatedBackend.allowed = 6

    stop_worker(four_at_once, stop_then_one_more)
    assert GatedBackend.answered == 6 and GatedBackend.cancelled == CONCURRENCY - 1
    kept = stored(jobs, job_id)  # the sixth is whichever record in flight was answered
    assert len(kept) == 6 and kept[:5] == [0, 1, 2, 3, 4]
    handed_back(jobs, job_id)
    GatedBackend.reset(allowed=1000)
    run_worker(four_at_once)
    assert stored(jobs, job_id) == list(range(20))
    assert GatedBackend.answered == 14


def test_a_second_signal_cancels_the_records_in_flight_at_once(
    four_at_once: Settings,
    jobs: JobService,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ctrl-C twice: the worker does not wait for the grace (an hour here) to stop."""
    monkeypatch.setattr(runner, "STOP_GRACE_S", 3600.0)
    job_id = submit(jobs)
    GatedBackend.reset(allowed=5)

    def twice(worker: Worker) -> None:
        worker.request_stop()
        worker.request_stop()
        worker.request_stop()  # a third says nothing more

    with caplog.at_level(logging.INFO, logger="textnlp.worker.consumer"):
        stop_worker(four_at_once, twice)
    assert stored(jobs, job_id) == [0, 1, 2, 3, 4]
    assert GatedBackend.cancelled == CONCURRENCY
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping")]
    assert len(said) == 2 and said[1] == "stopping now: cancelling the records in flight"
    handed_back(jobs, job_id)
    finishes_with_every_record_once(four_at_once, jobs, job_id)
