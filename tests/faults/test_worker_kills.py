"""Workers killed (SIGKILL) and stopped (SIGTERM) at random points, with PostgreSQL taken away
in between: every job ends, every index once, nothing duplicated."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

from tests.faults.test_worker_outages import OWNER, job, result_indices
from tests.support.cluster import Cluster, wait_for
from tests.support.proxy import TcpProxy
from textnlp.domain.jobs import TERMINAL_STATES

JOBS = 3
RECORDS = 150
ROUNDS = 8


def handles_sigterm(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the process catches SIGTERM yet (its caught-signals mask in /proc)."""
    status = Path(f"/proc/{proc.pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def test_random_kills_stops_and_postgres_outages(pg_cluster: Cluster, pg_proxy: TcpProxy) -> None:
    # Each SIGKILL may cost the job it interrupts an attempt: leave room for all of them on one.
    pg_cluster.set("TEXTNLP_QUEUE__MAX_RECEIVES", str(ROUNDS + 2))
    jobs = pg_cluster.service()
    views = [jobs.submit(OWNER, job(RECORDS)) for _ in range(JOBS)]
    workers: list[subprocess.Popen[bytes]] = [pg_cluster.worker() for _ in range(2)]
    rng = random.Random(12)
    kills = 0
    for _ in range(ROUNDS):
        time.sleep(rng.uniform(0.3, 1.5))
        action = rng.choice(("sigkill", "sigterm", "outage"))
        if action == "outage":
            pg_proxy.cut()
            time.sleep(rng.uniform(1.0, 3.0))
            pg_proxy.restore()
            continue
        victim = workers.pop(rng.randrange(len(workers)))
        if action == "sigkill":
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            kills += 1
        else:
            # A worker still importing has no handler yet (and holds no message): wait for it.
            wait_for(lambda: handles_sigterm(victim), 60, "the worker's SIGTERM handler")  # noqa: B023
            victim.send_signal(signal.SIGTERM)
            assert victim.wait(30) == 0  # handed its job back and exited cleanly
        workers.append(pg_cluster.worker())
    # Ended, not merely "not running": a worker killed after receiving a job's message but
    # before starting it leaves the job queued until the message is visible again.
    wait_for(
        lambda: all(jobs.status(OWNER, v.id).state in TERMINAL_STATES for v in views),
        180,
        "every job to end",
    )
    for view in views:
        finished = jobs.status(OWNER, view.id)
        assert finished.state == "succeeded", finished.error
        assert result_indices(jobs, view.id) == list(range(RECORDS))  # none lost, none twice
        assert jobs.store.count_records(view.id) == RECORDS
    assert kills > 0 and pg_proxy.cuts > 0  # the seed exercises both
    for proc in workers:
        wait_for(lambda: handles_sigterm(proc), 60, "the worker's SIGTERM handler")  # noqa: B023
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
