"""A worker killed (SIGKILL) in the middle of a priced job: what its requests in flight held
against their owner's spending cap stops counting once the run's lease runs out, not when the
job's message comes back (the queue's visibility timeout: an hour in production), which
refused the owner's other priced work meanwhile. A live worker's run keeps its holds (its
heartbeat renews the lease). On SQLite and on the real PostgreSQL, with real worker processes.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.support.cluster import Cluster, wait_for
from tests.support.job_backends import MODELS_YAML
from tests.support.priced_backend import PRICE
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService

OWNER = Owner(id="spender")
#: A local model with a price (the pool prices its usage): a second a request.
SLOW_PRICED_YAML = """
  - id: priced-crawl
    backend: fake-slow
    context_length: 4096
    options: {delay_s: 1.0}
"""


def held(jobs: JobService, job_id: str) -> float:
    """What the owner's spend counts beyond the job's stored records: its runs' holds."""
    row = jobs.store.get(job_id)
    assert row is not None
    return jobs.spending.spent(OWNER.id) - (row.cost_usd or 0.0)


def most_held(jobs: JobService, job_id: str, seconds: float) -> float:
    """The most held over ``seconds``: between a chunk's store and the next requests' start,
    a live run may hold nothing for a moment."""
    most, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        most = max(most, held(jobs, job_id))
        time.sleep(0.05)
    return most


@pytest.mark.parametrize("cluster", ["sqlite_cluster", "pg_cluster"])
def test_a_killed_workers_holds_stop_counting_when_its_lease_runs_out(
    cluster: str, request: pytest.FixtureRequest
) -> None:
    jobs_cluster: Cluster = request.getfixturevalue(cluster)
    (jobs_cluster.tmp / "models.yaml").write_text(MODELS_YAML + SLOW_PRICED_YAML)
    jobs_cluster.set("TEXTNLP_MODELS__PRICES", json.dumps({"priced-crawl": PRICE}))
    jobs_cluster.set("TEXTNLP_MODELS__USER_SPENDING_CAP_USD", "100")
    # The job's message does not come back while the test runs; the lease is 6 beats, 1.8 s.
    jobs_cluster.set("TEXTNLP_QUEUE__VISIBILITY_TIMEOUT_S", "600")
    jobs_cluster.set("TEXTNLP_QUEUE__HEARTBEAT_S", "0.3")
    jobs = jobs_cluster.service()
    view = jobs.submit(OWNER, JobSpec(template="product-review", count=1000, model="priced-crawl"))
    worker = jobs_cluster.worker()
    wait_for(lambda: held(jobs, view.id) > 0, 60, "the worker's first requests in flight")
    time.sleep(3.0)  # more than a lease: a live worker's run renews its hold
    assert most_held(jobs, view.id, 1.5) > 0
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    # Before: held until the job's next attempt, ten minutes away here.
    wait_for(lambda: held(jobs, view.id) == pytest.approx(0.0), 15, "the dead run's lease")
    row = jobs.store.get(view.id)
    assert row is not None and row.state == "running" and row.done < 1000
