"""The worker in process (SQLite, fake models) against outages injected at the adapters' seams,
and the dead-letter sweep of jobs whose workers died.

The outages here are ``ServiceUnavailable`` raised by a store or queue standing in for the real
one, as the real adapters raise it; tests/faults/ takes real dependencies away.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tests.support.platform import run_worker
from textnlp.adapters.db.job_store import JobStore
from textnlp.adapters.queue import JobQueue, QueueMessage
from textnlp.adapters.queue.database import DatabaseQueue
from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.domain import Record
from textnlp.errors import ServiceUnavailable
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService
from textnlp.worker import Worker, WorkerOptions

ALICE = Owner(id="alice")


def spec(**kw: object) -> JobSpec:
    base: dict[str, object] = {"template": "product-review", "count": 24, "model": "fake-fast"}
    return JobSpec.model_validate({**base, **kw})


def down() -> ServiceUnavailable:
    return ServiceUnavailable(
        "cannot reach the database at db:5432: refused", dependency="database"
    )


class FlakyStore(JobStore):
    """The job store of the worker, with the database gone for the first ``outages`` chunks
    (or for good while ``gone`` is set)."""

    def __init__(self, store: JobStore, outages: int = 0) -> None:
        super().__init__(store.engine)
        self.outages = outages
        self.gone = threading.Event()
        self.refused = 0

    def save_records(
        self, job_id: str, records: Sequence[Record], *, hold_id: str | None = None
    ) -> int:
        if self.gone.is_set() or self.outages > 0:
            self.outages -= 1
            self.refused += 1
            raise down()
        return super().save_records(job_id, records, hold_id=hold_id)


class FlakyQueue:
    """A queue whose receives fail ``outages`` times before reaching the real one."""

    def __init__(self, queue: JobQueue, outages: int) -> None:
        self.queue = queue
        self.outages = outages

    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[QueueMessage]:
        if self.outages > 0:
            self.outages -= 1
            raise ServiceUnavailable("cannot reach the queue (SQS): refused", dependency="queue")
        return self.queue.receive(max_messages, wait_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def work(
    settings: Settings,
    inject: Callable[[Platform, Worker], None],
    *,
    until: Callable[[Worker], bool] | None = None,
) -> Worker:
    """A worker with faults injected; with ``until``, stopped (as by SIGTERM) once it holds."""

    async def go() -> Worker:
        async with Platform(settings) as platform:
            options = WorkerOptions(once=until is None, wait_s=0.1)
            worker = Worker(platform, options)
            inject(platform, worker)
            running = asyncio.create_task(worker.run())
            if until is not None:
                while not until(worker):
                    await asyncio.sleep(0.02)
                worker.request_stop()
            await asyncio.wait_for(running, 120)
            return worker

    return asyncio.run(go())


def fast_patience(worker: Worker) -> None:
    worker.patience.first_s = worker.patience.longest_s = 0.01


def indices(jobs: JobService, job_id: str) -> list[int]:
    return [r.index for r in jobs.store.iter_records(job_id, ok_only=False)]


def test_a_database_outage_during_a_job_is_not_one_of_its_attempts(
    settings: Settings, jobs: JobService
) -> None:
    view = jobs.submit(ALICE, spec())
    stores: list[FlakyStore] = []

    def inject(platform: Platform, worker: Worker) -> None:
        fast_patience(worker)
        stores.append(FlakyStore(platform.job_store, outages=3))
        platform.job_store = stores[0]  # before the worker builds its services

    work(settings, inject)
    done = jobs.status(ALICE, view.id)
    assert stores[0].refused == 3  # the outage happened, three times, mid-job
    assert done.state == "succeeded" and done.attempts == 1
    assert indices(jobs, view.id) == list(range(24))


def test_the_loop_survives_an_unreachable_queue(settings: Settings, jobs: JobService) -> None:
    view = jobs.submit(ALICE, spec(count=4))

    def inject(platform: Platform, worker: Worker) -> None:
        fast_patience(worker)
        worker.queues = [FlakyQueue(q, outages=3) for q in worker.queues]  # type: ignore[misc]

    worker = work(settings, inject)
    assert worker.processed == 1
    assert jobs.status(ALICE, view.id).state == "succeeded"


def test_a_stop_while_waiting_for_the_database_hands_the_job_back_uncounted(
    settings: Settings, jobs: JobService
) -> None:
    view = jobs.submit(ALICE, spec())
    stores: list[FlakyStore] = []

    def inject(platform: Platform, worker: Worker) -> None:
        fast_patience(worker)
        stores.append(FlakyStore(platform.job_store))
        stores[0].gone.set()
        platform.job_store = stores[0]  # before the worker builds its services

    work(settings, inject, until=lambda _: bool(stores) and stores[0].refused >= 3)
    row = jobs.store.get(view.id)
    assert row is not None and row.state == "running" and row.attempts == 0
    queue = jobs.queues.generation
    again = queue.receive(1)  # handed back: visible at once, and this receive is the first
    assert len(again) == 1 and again[0].receive_count == 1
    queue.release(again[0])
    run_worker(settings)
    assert jobs.status(ALICE, view.id).state == "succeeded"
    assert jobs.status(ALICE, view.id).attempts == 1


def test_a_stop_during_validation_hands_the_message_back_at_once(
    settings: Settings, jobs: JobService
) -> None:
    view = jobs.submit(ALICE, spec(count=4, validation={"min_records": 1}))
    started, release = threading.Event(), threading.Event()

    def inject(platform: Platform, worker: Worker) -> None:
        validate = worker.runner.validate

        def slow(*args: Any) -> Any:
            started.set()
            release.wait(60)  # a validation far longer than the stop timeout of a task
            return validate(*args)

        worker.runner.validate = slow  # type: ignore[method-assign,assignment]

    def stopping(_: Worker) -> bool:
        if not started.is_set():
            return False
        # The stop is seen first; then the abandoned validation may end (the process waits
        # for its thread on exit, as a task's would until its stop timeout).
        threading.Timer(0.5, release.set).start()
        return True

    try:
        work(settings, inject, until=stopping)
    finally:
        release.set()
    assert jobs.status(ALICE, view.id).state == "running"  # generated, not yet validated
    handed_back = jobs.queues.validation.receive(1)
    assert len(handed_back) == 1 and handed_back[0].receive_count == 1  # at once, uncounted
    jobs.queues.validation.release(handed_back[0])
    run_worker(settings)
    row = jobs.store.get(view.id)
    assert row is not None and row.state in {"succeeded", "failed"} and row.report_key


# -- the dead-letter sweep ---------------------------------------------------------------------
def records_made_by_a_previous_worker(
    settings: Settings, jobs: JobService, job: JobSpec
) -> list[Record]:
    """Every record of ``job``, as a worker that died before publishing would have stored."""
    donor = jobs.submit(Owner(id="donor"), job)
    run_worker(settings)
    assert jobs.status(Owner(id="donor"), donor.id).state == "succeeded"
    return list(jobs.store.iter_records(donor.id, ok_only=False))


def died_every_time(jobs: JobService, job_id: str, queue: JobQueue) -> None:
    """Three workers took the job and died: three attempts counted, three receives, and the
    message moved to the dead-letter queue by redrive."""
    assert isinstance(queue, DatabaseQueue)
    grabber = DatabaseQueue(
        queue.engine, queue.name, dead_letter_queue=queue.dead_letter_queue, visibility_timeout_s=0
    )
    for _ in range(3):
        jobs.store.start(job_id, "a worker that died")
        assert len(grabber.receive(1)) == 1
    assert grabber.receive(1) == [] and queue.counts()["dead_letter"] == 1  # redriven


def test_a_job_whose_workers_died_after_storing_every_record_is_finished(
    settings: Settings, jobs: JobService
) -> None:
    job = spec(count=10)
    records = records_made_by_a_previous_worker(settings, jobs, job)
    view = jobs.submit(ALICE, job)
    jobs.store.save_records(view.id, records)
    died_every_time(jobs, view.id, jobs.queues.generation)
    run_worker(settings)  # its sweep finds the dead-lettered message
    done = jobs.status(ALICE, view.id)
    assert done.state == "succeeded", done.error
    result = jobs.storage.get_bytes(jobs.results(ALICE, view.id).key).decode()
    assert len(result.splitlines()) == 10 - done.progress.failed
    assert jobs.queues.generation.counts() == {"queue": 0, "dead_letter": 0}  # type: ignore[attr-defined]


def test_such_a_job_with_a_gate_goes_to_validation(settings: Settings, jobs: JobService) -> None:
    job = spec(count=10, validation={"min_records": 1})
    records = records_made_by_a_previous_worker(settings, jobs, job)
    view = jobs.submit(ALICE, job)
    jobs.store.save_records(view.id, records)
    died_every_time(jobs, view.id, jobs.queues.generation)
    run_worker(settings)  # the sweep hands it over; the same worker runs the validation step
    done = jobs.status(ALICE, view.id)
    assert done.state in {"succeeded", "failed"}
    row = jobs.store.get(view.id)
    assert row is not None and row.result_key and row.report_key  # validated, not just failed


def test_a_job_whose_workers_died_part_way_fails_and_keeps_what_it_made(
    settings: Settings, jobs: JobService
) -> None:
    job = spec(count=10)
    made = records_made_by_a_previous_worker(settings, jobs, job)[:4]
    view = jobs.submit(ALICE, job)
    jobs.store.save_records(view.id, made)
    died_every_time(jobs, view.id, jobs.queues.generation)
    run_worker(settings)  # its sweep fails it
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and "dead-lettered" in (failed.error or "")
    assert failed.result is not None
    kept = jobs.storage.get_bytes(jobs.results(ALICE, view.id).key).decode()
    assert [json.loads(line)["index"] for line in kept.splitlines()] == [
        r.index for r in made if r.status == "ok"
    ]


def test_a_dead_lettered_job_with_attempts_left_goes_back_to_its_queue(
    settings: Settings, jobs: JobService
) -> None:
    view = jobs.submit(ALICE, spec())
    died_every_time(jobs, view.id, jobs.queues.generation)
    for _ in range(2):  # two of the three receives were lost to outages, not to the job
        jobs.store.uncount_attempt(view.id)
    run_worker(settings)
    done = jobs.status(ALICE, view.id)
    assert done.state == "succeeded" and indices(jobs, view.id) == list(range(24))
