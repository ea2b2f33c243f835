"""Real databases (SQLite file, PostgreSQL schema per session) and moto's SQS/S3 for jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine, text

from textnlp.adapters.db.base import make_engine
from textnlp.adapters.db.schema import upgrade_database


def migrated_sqlite(path: Path) -> tuple[str, Engine]:
    url = f"sqlite:///{path.as_posix()}"
    upgrade_database(url)
    return url, make_engine(url)


@pytest.fixture(scope="session")
def pg_jobs_url(postgres_url: str) -> Iterator[str]:
    """A fresh schema in the shared test database, migrated, dropped at the end."""
    schema = f"jobs_{uuid.uuid4().hex[:10]}"
    admin = make_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{postgres_url}?options=-csearch_path={schema}"
    upgrade_database(url)
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_engine(pg_jobs_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_jobs_url)
    with engine.begin() as connection:
        for table in ("queue_messages", "job_idempotency_keys", "job_outbox", "job_records"):
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("DELETE FROM jobs"))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    _, engine = migrated_sqlite(tmp_path / "jobs.db")
    yield engine
    engine.dispose()


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
