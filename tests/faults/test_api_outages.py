"""The API while PostgreSQL, SQS or S3 is taken away: 503 with Retry-After, never a 500, never
an address; back to normal once the dependency is back, with nothing submitted lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import AWS_TEST_ENV, through
from tests.support.api import Api, make_settings, postgres_schema_url, start_api
from tests.support.job_backends import MODELS_YAML, register
from tests.support.job_stores import aws_client
from tests.support.platform import run_worker
from tests.support.proxy import TcpProxy
from tests.support.queues import private_queues
from textnlp.adapters.queue.sqs import ensure_sqs_queues
from textnlp.config import Settings

BATCH = "/api/v1/generate/batch"
STATUS = "/api/v1/generate/status"


def batch(count: int = 6) -> dict[str, Any]:
    return {"template": "qa-pairs", "count": count, "model": "fake-fast", "format": "jsonl"}


def assert_unavailable(response: Any, dependency: str, proxy: TcpProxy) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["type"] == "service_unavailable" and error["dependency"] == dependency
    for secret in ("127.0.0.1", str(proxy.port), "postgresql", "http://"):
        assert secret not in response.text  # where the dependency lives is not the client's


@pytest.fixture
def models(tmp_path: Path) -> Path:
    register()
    path = tmp_path / "models.yaml"
    path.write_text(MODELS_YAML)
    return path


@pytest.fixture
def pg_api(tmp_path: Path, models: Path, pg_proxy: TcpProxy, postgres_url: str) -> Iterator[Api]:
    for url in postgres_schema_url():
        settings = make_settings(
            tmp_path / "home",
            through(url, pg_proxy),
            models_file=models,
            generation={"response_cache": False},
        )
        yield from start_api(settings)


def test_postgres_outage_is_503_on_every_kind_of_route(pg_api: Api, pg_proxy: TcpProxy) -> None:
    alice = pg_api.headers("alice")
    submitted = pg_api.client.post(BATCH, json=batch(), headers=alice)
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    pg_proxy.cut()
    try:
        login = {"username": "bob", "password": "correct horse battery"}
        assert_unavailable(
            pg_api.client.post("/api/v1/auth/login", json=login), "database", pg_proxy
        )
        assert_unavailable(
            pg_api.client.get(f"{STATUS}/{job_id}", headers=alice), "database", pg_proxy
        )
        assert_unavailable(pg_api.client.get(BATCH, headers=alice), "database", pg_proxy)
        assert_unavailable(
            pg_api.client.post(BATCH, json=batch(), headers=alice), "database", pg_proxy
        )
    finally:
        pg_proxy.restore()
    assert pg_api.client.get(f"{STATUS}/{job_id}", headers=alice).status_code == 200


@pytest.fixture
def aws_api(
    tmp_path: Path,
    models: Path,
    moto_server: str,
    sqs_proxy: TcpProxy,
    s3_proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Api]:
    """The app on SQLite with its queues on SQS and its storage on S3, each behind a proxy."""
    suffix = uuid.uuid4().hex[:8]
    for name, value in {
        **AWS_TEST_ENV,
        "AWS_ENDPOINT_URL_SQS": f"http://{sqs_proxy.url_host}",
        "AWS_ENDPOINT_URL_S3": f"http://{s3_proxy.url_host}",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    bucket = f"faults-api-{suffix}"
    aws_client("s3", moto_server).create_bucket(Bucket=bucket)
    settings: Settings = make_settings(
        tmp_path / "home",
        models_file=models,
        generation={"response_cache": False},
        queue={
            "backend": "sqs",
            **private_queues(suffix),
            "wait_time_s": 1,
        },
        storage={"backend": "s3", "bucket": bucket},
    )
    ensure_sqs_queues(aws_client("sqs", moto_server), settings)
    yield from start_api(settings)


def test_queue_and_storage_outages_are_503_and_a_submit_is_kept(
    aws_api: Api, sqs_proxy: TcpProxy, s3_proxy: TcpProxy
) -> None:
    alice = aws_api.headers("alice")
    first = aws_api.client.post(BATCH, json=batch(), headers=alice).json()["id"]
    run_worker(aws_api.settings)
    assert aws_api.client.get(f"{STATUS}/{first}", headers=alice).json()["state"] == "succeeded"
    sqs_proxy.cut()
    s3_proxy.cut()
    try:
        # The queue is down: the job is stored with its message in the outbox, and accepted.
        kept = aws_api.client.post(BATCH, json=batch(), headers=alice)
        assert kept.status_code == 202
        results = aws_api.client.get(
            f"{STATUS}/{first}/results", headers=alice, follow_redirects=False
        )
        assert_unavailable(results, "storage", s3_proxy)
        upload = aws_api.client.put(
            f"{BATCH}/uploads/prompts.csv", content=b"prompt\nSay hi\n", headers=alice
        )
        assert_unavailable(upload, "storage", s3_proxy)
    finally:
        sqs_proxy.restore()
        s3_proxy.restore()
    run_worker(aws_api.settings)  # its loop publishes what the outbox kept
    second = aws_api.client.get(f"{STATUS}/{kept.json()['id']}", headers=alice).json()
    assert second["state"] == "succeeded" and second["progress"]["done"] == 6
