"""Worker faults with real processes: SIGKILL, SIGTERM, racing workers, poison jobs."""

from __future__ import annotations

import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support.cluster import Cluster, wait_for
from textnlp.adapters.db.base import make_engine
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService

OWNER = Owner(id="tester")


@pytest.fixture
def sqlite_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, f"sqlite:///{(tmp_path / 'jobs.db').as_posix()}", monkeypatch)
    yield cluster
    cluster.stop_all()


@pytest.fixture
def pg_cluster(
    tmp_path: Path, pg_jobs_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    engine = make_engine(pg_jobs_url)
    with engine.begin() as connection:
        for table in (
            "queue_messages",
            "job_idempotency_keys",
            "job_outbox",
            "job_records",
            "jobs",
        ):
            connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
    cluster = Cluster(tmp_path, pg_jobs_url, monkeypatch)
    yield cluster
    cluster.stop_all()


def job(count: int, model: str = "fake-slow") -> JobSpec:
    return JobSpec(template="product-review", count=count, model=model)


def result_indices(jobs: JobService, job_id: str) -> list[int]:
    key = jobs.results(OWNER, job_id).key
    return [json.loads(line)["index"] for line in jobs.storage.get_bytes(key).splitlines()]


def done(jobs: JobService, job_id: str) -> int:
    row = jobs.store.get(job_id)
    assert row is not None
    return row.done


def test_sigkill_at_random_points_loses_and_duplicates_nothing(sqlite_cluster: Cluster) -> None:
    # Each kill costs a receive; allow more than the default 3 so the 4th worker may finish.
    sqlite_cluster.set("TEXTNLP_QUEUE__MAX_RECEIVES", "10")
    jobs = sqlite_cluster.service()
    view = jobs.submit(OWNER, job(500))
    rng = random.Random(7)
    progress = [0]
    for _ in range(3):
        proc = sqlite_cluster.worker()
        target = progress[-1] + rng.randint(30, 120)
        wait_for(lambda: done(jobs, view.id) >= target, 60, f"{target} records")  # noqa: B023
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        progress.append(done(jobs, view.id))
    assert progress == sorted(progress) and 0 < progress[-1] < 500  # killed mid-job, 3 times
    last = sqlite_cluster.worker()
    wait_for(lambda: jobs.status(OWNER, view.id).state != "running", 120, "the job")
    assert jobs.status(OWNER, view.id).state == "succeeded"
    assert result_indices(jobs, view.id) == list(range(500))
    assert jobs.store.count_records(view.id) == 500
    assert jobs.status(OWNER, view.id).attempts == 4
    last.send_signal(signal.SIGTERM)
    assert last.wait(20) == 0


@pytest.mark.parametrize("mode", [(), ("--once",)], ids=["service", "once"])
def test_sigterm_hands_the_job_back_at_a_checkpoint(
    sqlite_cluster: Cluster, mode: tuple[str, ...]
) -> None:
    jobs = sqlite_cluster.service()
    view = jobs.submit(OWNER, job(300))
    proc = sqlite_cluster.worker(*mode)
    wait_for(lambda: done(jobs, view.id) >= 20, 60, "some records")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    stored = jobs.store.count_records(view.id)
    assert 0 < stored < 300 and jobs.status(OWNER, view.id).state == "running"
    assert jobs.status(OWNER, view.id).attempts == 0  # a stop is not a failed attempt
    message = jobs.queues.generation.receive(1)  # handed back: visible at once
    assert len(message) == 1 and message[0].receive_count == 1  # and that receive not counted
    jobs.queues.generation.release(message[0])
    finisher = sqlite_cluster.worker("--once")
    assert finisher.wait(120) == 0
    assert jobs.status(OWNER, view.id).state == "succeeded"
    assert result_indices(jobs, view.id) == list(range(300))


def test_a_job_cancelled_mid_run_keeps_the_records_it_made(sqlite_cluster: Cluster) -> None:
    """As an OpenAI batch's partial output: the records stored before the worker saw the cancel
    (it stops within a chunk) are the cancelled job's result, each index once, in order."""
    jobs = sqlite_cluster.service()
    view = jobs.submit(OWNER, job(300))
    proc = sqlite_cluster.worker("--once")
    wait_for(lambda: done(jobs, view.id) >= 20, 60, "some records")
    assert jobs.cancel(OWNER, view.id).state == "cancelled"
    assert proc.wait(60) == 0
    made = jobs.store.count_records(view.id, ok_only=True)
    assert 0 < made < 300
    status = jobs.status(OWNER, view.id)
    assert status.state == "cancelled" and status.result is not None
    assert result_indices(jobs, view.id) == list(range(made))


def test_two_workers_racing_never_duplicate_a_record(pg_cluster: Cluster) -> None:
    jobs = pg_cluster.service()
    views = [jobs.submit(OWNER, job(150, "fake-fast")) for _ in range(4)]
    workers = [pg_cluster.worker("--concurrency", "2") for _ in range(2)]
    wait_for(
        lambda: all(jobs.status(OWNER, v.id).state == "succeeded" for v in views), 180, "4 jobs"
    )
    for view in views:
        assert result_indices(jobs, view.id) == list(range(150))
        assert jobs.store.count_records(view.id) == 150
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_poison_job_reaches_the_dead_letter_queue_and_fails(sqlite_cluster: Cluster) -> None:
    jobs = sqlite_cluster.service()
    view = jobs.submit(OWNER, job(5, "poison"))
    jobs.queues.generation.send("not a job", group_id="junk", dedup_id="junk")
    proc = sqlite_cluster.worker("--once")
    assert proc.wait(120) == 0
    failed = jobs.status(OWNER, view.id)
    # The model's own text is a bug's, for the worker's log: its owner reads the class only.
    assert failed.state == "failed" and "internal error (RuntimeError)" in (failed.error or "")
    assert "always fails" not in (failed.error or "")
    bodies = sorted(m.body for m in jobs.queues.generation.dead_letters(10))
    assert len(bodies) == 2 and "not a job" in bodies


def test_job_whose_worker_dies_every_time_is_dead_lettered_and_failed(
    sqlite_cluster: Cluster,
) -> None:
    sqlite_cluster.set("TEXTNLP_QUEUE__DEAD_LETTER_SWEEP_S", "0.5")
    jobs = sqlite_cluster.service()
    view = jobs.submit(OWNER, job(5, "crash"))
    for attempt in range(1, 4):  # max_receives is 3: three workers die on the job
        proc = sqlite_cluster.worker()
        assert proc.wait(60) == -signal.SIGKILL, f"attempt {attempt}"
        row = jobs.store.get(view.id)
        assert row is not None and row.state == "running" and row.attempts == attempt
    survivor = sqlite_cluster.worker()
    wait_for(lambda: jobs.status(OWNER, view.id).state == "failed", 60, "the job to fail")
    failed = jobs.status(OWNER, view.id)
    assert "dead-lettered after 3 receives" in (failed.error or "")
    assert "stopped without a word" in (failed.error or "")
    # The message stays in the dead-letter queue (the sweep only read it) for a person to see.
    assert jobs.queues.generation.counts() == {"queue": 0, "dead_letter": 1}  # type: ignore[attr-defined]
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(20) == 0
