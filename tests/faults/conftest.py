"""The fault suite: real workers and a real app, with their dependencies taken away.

Nothing shared is ever stopped: PostgreSQL (127.0.0.1:5432) and moto's server are reached
through ``TcpProxy``s (``tests.support.proxy``) that a test cuts and restores, which is the
same outage for a client as the server going away. Each test checks that nothing is lost
(every index once in the result), nothing is duplicated, and nothing is left stalled (the job
ends within a bound once the dependency is back).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from tests.support.cluster import Cluster
from tests.support.job_stores import aws_client, pg_jobs_url
from tests.support.proxy import TcpProxy
from tests.support.queues import private_queues
from textnlp.adapters.db.base import make_engine
from textnlp.adapters.queue.sqs import ensure_sqs_queues

__all__ = ["pg_jobs_url"]

#: Test credentials, and one retry inside botocore: then the outage is ours to wait out (and the
#: test short).
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_RETRY_MODE": "standard",
    "AWS_MAX_ATTEMPTS": "2",
}
JOB_TABLES = ("queue_messages", "job_idempotency_keys", "job_outbox", "job_records", "jobs")


def through(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    netloc = urlsplit(url).netloc
    host_port = netloc.rsplit("@", 1)[-1]
    return url.replace(f"@{host_port}", f"@{proxy.url_host}", 1)


@pytest.fixture
def pg_proxy(postgres_url: str) -> Iterator[TcpProxy]:
    port = urlsplit(postgres_url).port or 5432
    with TcpProxy("127.0.0.1", port) as proxy:
        yield proxy


@pytest.fixture
def pg_url(pg_jobs_url: str, pg_proxy: TcpProxy) -> str:
    """The session's job schema, emptied, as reached through ``pg_proxy``."""
    engine = make_engine(pg_jobs_url)
    with engine.begin() as connection:
        for table in JOB_TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
    return through(pg_jobs_url, pg_proxy)


@pytest.fixture
def pg_cluster(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, pg_url, monkeypatch)
    yield cluster
    cluster.stop_all()


@pytest.fixture
def sqlite_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, f"sqlite:///{(tmp_path / 'jobs.db').as_posix()}", monkeypatch)
    yield cluster
    cluster.stop_all()


@pytest.fixture
def sqs_proxy(moto_server: str) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", urlsplit(moto_server).port or 80) as proxy:
        yield proxy


@pytest.fixture
def s3_proxy(moto_server: str) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", urlsplit(moto_server).port or 80) as proxy:
        yield proxy


def use_aws(
    cluster: Cluster,
    moto_server: str,
    *,
    sqs: TcpProxy | None = None,
    s3: TcpProxy | None = None,
) -> None:
    """Point the cluster's queues at SQS and/or its storage at S3, each through its proxy
    (botocore's per-service endpoint variables), on queues and a bucket of its own."""
    suffix = uuid.uuid4().hex[:8]
    for name, value in AWS_TEST_ENV.items():
        cluster.set(name, value)
    cluster.env.pop("AWS_ENDPOINT_URL", None)
    cluster.monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    if sqs is not None:
        cluster.set("AWS_ENDPOINT_URL_SQS", f"http://{sqs.url_host}")
        cluster.set("TEXTNLP_QUEUE__BACKEND", "sqs")
        cluster.set("TEXTNLP_QUEUE__WAIT_TIME_S", "1")
        for setting, name in private_queues(suffix).items():
            cluster.set(f"TEXTNLP_QUEUE__{setting.upper()}", name)
        ensure_sqs_queues(aws_client("sqs", moto_server), cluster.settings())
    if s3 is not None:
        bucket = f"faults-{suffix}"
        aws_client("s3", moto_server).create_bucket(Bucket=bucket)
        cluster.set("AWS_ENDPOINT_URL_S3", f"http://{s3.url_host}")
        cluster.set("TEXTNLP_STORAGE__BACKEND", "s3")
        cluster.set("TEXTNLP_STORAGE__BUCKET", bucket)
