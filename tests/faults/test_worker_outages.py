"""Worker processes while PostgreSQL, SQS or S3 is taken away and brought back."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable

from tests.faults.conftest import use_aws
from tests.support.cluster import Cluster, wait_for
from tests.support.proxy import TcpProxy
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService

OWNER = Owner(id="tester")
#: Longer than the harness's 2 s visibility timeout: a held message's visibility runs out.
OUTAGE_S = 4.0


def job(count: int, model: str = "fake-crawl") -> JobSpec:
    """``fake-crawl``: 50 ms a record, 4 at a time, so an outage lands in the middle."""
    return JobSpec(template="product-review", count=count, model=model)


def done(jobs: JobService, job_id: str) -> int:
    row = jobs.store.get(job_id)
    assert row is not None
    return row.done


def result_indices(jobs: JobService, job_id: str) -> list[int]:
    key = jobs.results(OWNER, job_id).key
    return [json.loads(line)["index"] for line in jobs.storage.get_bytes(key).splitlines()]


def outage(
    *proxies: TcpProxy, seconds: float = OUTAGE_S, during: Callable[[], None] | None = None
) -> None:
    for proxy in proxies:
        proxy.cut()
    time.sleep(seconds)
    if during is not None:
        during()
    for proxy in proxies:
        proxy.restore()


def alive_then_stopped(proc: subprocess.Popen[bytes]) -> None:
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_postgres_outages_mid_job_lose_nothing_and_cost_no_attempt(
    pg_cluster: Cluster, pg_proxy: TcpProxy
) -> None:
    jobs = pg_cluster.service()
    view = jobs.submit(OWNER, job(300))
    worker = pg_cluster.worker()
    for target in (60, 160):
        wait_for(lambda: done(jobs, view.id) >= target, 90, f"{target} records")  # noqa: B023
        assert done(jobs, view.id) < 300  # mid-job
        outage(pg_proxy)
    wait_for(lambda: jobs.status(OWNER, view.id).state != "running", 120, "the job to end")
    finished = jobs.status(OWNER, view.id)
    assert finished.state == "succeeded" and finished.attempts == 1
    assert result_indices(jobs, view.id) == list(range(300))
    assert jobs.store.count_records(view.id) == 300
    assert pg_proxy.cuts == 2
    alive_then_stopped(worker)


def test_a_worker_started_while_postgres_is_down_waits_for_it(
    pg_cluster: Cluster, pg_proxy: TcpProxy
) -> None:
    jobs = pg_cluster.service()
    view = jobs.submit(OWNER, job(30, "fake-fast"))
    pg_proxy.cut()
    worker = pg_cluster.worker()
    time.sleep(OUTAGE_S)
    assert worker.poll() is None  # it did not give up
    pg_proxy.restore()
    wait_for(lambda: jobs.status(OWNER, view.id).state == "succeeded", 90, "the job")
    assert result_indices(jobs, view.id) == list(range(30))
    alive_then_stopped(worker)


def test_sigterm_during_a_postgres_outage_exits_and_the_job_is_not_charged(
    pg_cluster: Cluster, pg_proxy: TcpProxy
) -> None:
    jobs = pg_cluster.service()
    view = jobs.submit(OWNER, job(300))
    worker = pg_cluster.worker()
    wait_for(lambda: done(jobs, view.id) >= 40, 90, "some records")
    pg_proxy.cut()
    time.sleep(1.0)  # the worker now waits for the database
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    pg_proxy.restore()
    finisher = pg_cluster.worker()
    wait_for(lambda: jobs.status(OWNER, view.id).state != "running", 120, "the job to end")
    finished = jobs.status(OWNER, view.id)
    assert finished.state == "succeeded"
    # The interrupted attempt could not be given back (the database was gone), so it may
    # count; never more than that one.
    assert finished.attempts <= 2
    assert result_indices(jobs, view.id) == list(range(300))
    alive_then_stopped(finisher)


def test_sqs_and_s3_outages_mid_job_lose_nothing_and_cost_no_attempt(
    sqlite_cluster: Cluster, moto_server: str, sqs_proxy: TcpProxy, s3_proxy: TcpProxy
) -> None:
    use_aws(sqlite_cluster, moto_server, sqs=sqs_proxy, s3=s3_proxy)
    jobs = sqlite_cluster.service()
    view = jobs.submit(OWNER, job(200))
    worker = sqlite_cluster.worker()
    wait_for(lambda: done(jobs, view.id) >= 50, 90, "50 records")

    def mid_job() -> None:
        # The records go on (SQLite is there); the result waits for S3, the job for both.
        row = jobs.store.get(view.id)
        assert row is not None and row.state == "running"

    outage(sqs_proxy, s3_proxy, during=mid_job)
    wait_for(lambda: jobs.status(OWNER, view.id).state != "running", 120, "the job to end")
    finished = jobs.status(OWNER, view.id)
    assert finished.state == "succeeded" and finished.attempts == 1
    assert result_indices(jobs, view.id) == list(range(200))
    alive_then_stopped(worker)


def test_workers_killed_while_storage_is_down_then_the_job_is_finished_from_the_store(
    sqlite_cluster: Cluster, moto_server: str, s3_proxy: TcpProxy
) -> None:
    """Every record stored, the result not uploaded, three workers dead: the job succeeds."""
    use_aws(sqlite_cluster, moto_server, s3=s3_proxy)
    sqlite_cluster.set("TEXTNLP_QUEUE__DEAD_LETTER_SWEEP_S", "0.5")
    jobs = sqlite_cluster.service()
    view = jobs.submit(OWNER, job(40, "fake-fast"))
    s3_proxy.cut()
    for attempt in (1, 2, 3):  # max_receives is 3
        worker = sqlite_cluster.worker()
        wait_for(
            lambda: (
                (row := jobs.store.get(view.id)) is not None  # noqa: B023
                and row.attempts == attempt  # noqa: B023
                and row.done == 40
            ),
            90,
            f"attempt {attempt} to wait for the storage",
        )
        time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    s3_proxy.restore()
    survivor = sqlite_cluster.worker()
    wait_for(lambda: jobs.status(OWNER, view.id).state != "running", 90, "the sweep")
    finished = jobs.status(OWNER, view.id)
    assert finished.state == "succeeded", finished.error
    assert result_indices(jobs, view.id) == list(range(40))
    alive_then_stopped(survivor)
