"""Every wait on the database is bounded, on the machine's PostgreSQL: a lock held by someone
else (a migration's ALTER TABLE behind a long transaction) or a pool whose connections are all
in use answers 503 in seconds instead of holding requests for minutes; migrations run one at a
time; a schema ahead of this release (the next one's, during a deploy) is served."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import POSTGRES_URL
from tests.support.api import postgres_schema_url, start_api
from textnlp.adapters.db.base import make_engine
from textnlp.adapters.db.schema import check_schema, current_revisions, upgrade_database
from textnlp.config import DatabaseSettings, load_settings
from textnlp.errors import ConfigError, ServiceUnavailable


@pytest.fixture
def schema_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.mark.timeout(60)
def test_a_lock_wait_past_its_bound_is_an_outage_not_a_hang(schema_url: str) -> None:
    holder = create_engine(schema_url)
    engine = make_engine(schema_url, DatabaseSettings(lock_timeout_s=0.5))
    try:
        with holder.connect() as locked:
            locked.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))  # as ALTER does
            # Without the bound the query waits for the lock for ever: the timeout mark fails it.
            with (
                pytest.raises(ServiceUnavailable, match="did not answer in time"),
                engine.connect() as connection,
            ):
                connection.execute(text("SELECT count(*) FROM users"))
            locked.rollback()
    finally:
        engine.dispose()
        holder.dispose()


def test_a_full_pool_answers_503_with_retry_after(schema_url: str, tmp_path: Path) -> None:
    database = {"url": schema_url, "pool_size": 1, "max_overflow": 0, "pool_timeout_s": 0.3}
    settings = load_settings(home=tmp_path, database=database)
    for api in start_api(settings):
        headers = api.headers("alice")
        platform: Any = api.client.app.state.platform  # type: ignore[attr-defined]
        with platform.engine.connect():  # the pool's one connection, held
            answer = api.client.get("/api/v1/models/list", headers=headers)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["dependency"] == "database"
        assert int(answer.headers["retry-after"]) >= 1
        assert api.client.get("/api/v1/models/list", headers=headers).status_code == 200


def test_a_full_pool_is_no_database_outage_to_the_health_check(
    schema_url: str, tmp_path: Path
) -> None:
    """The probe borrowed from the serving pool: held full (a lock, slow statements), it waited
    ``pool_timeout_s`` and called the database down, a 503 that takes every task out of its
    load balancer while the database answers."""
    database = {"url": schema_url, "pool_size": 1, "max_overflow": 0, "pool_timeout_s": 0.3}
    settings = load_settings(home=tmp_path, database=database)
    for api in start_api(settings):
        platform: Any = api.client.app.state.platform  # type: ignore[attr-defined]
        with platform.engine.connect():  # the pool's one connection, held
            answer = api.client.get("/api/v1/admin/health")
        assert answer.status_code == 200, answer.text
        assert answer.json()["checks"]["database"]["status"] == "ok"


def test_a_server_at_its_connection_limit_is_busy_not_down(schema_url: str, tmp_path: Path) -> None:
    """A server out of connection slots refuses the probe's new connection (SQLSTATE 53300)
    while the serving pool's connections answer: a 503 would take every task out of its load
    balancer, an outage made of a full server. The role's own limit stands in for the server's
    ``max_connections`` (same error), so the shared server stays as it is."""
    role = f"capped_{time.monotonic_ns()}"
    schema = str(make_url(schema_url).query["options"]).removeprefix("-csearch_path=")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        for granted in ("SCHEMA", "ALL TABLES IN SCHEMA", "ALL SEQUENCES IN SCHEMA"):
            connection.execute(text(f'GRANT ALL ON {granted} "{schema}" TO "{role}"'))
    url = make_url(schema_url).set(username=role).render_as_string(hide_password=False)
    database = {"url": url, "pool_size": 1, "max_overflow": 0}
    try:
        for api in start_api(load_settings(home=tmp_path, database=database)):
            headers = api.headers("alice")
            assert api.client.get("/api/v1/models/list", headers=headers).status_code == 200
            with admin.connect() as connection:  # the pool keeps its connection; no new one
                connection.execute(text(f'ALTER ROLE "{role}" CONNECTION LIMIT 0'))
            api.client.app.state.health.invalidate()  # type: ignore[attr-defined]
            answer = api.client.get("/api/v1/admin/health")
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "degraded"
            assert answer.json()["checks"]["database"]["status"] == "busy"
            assert api.client.get("/api/v1/models/list", headers=headers).status_code == 200
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
            connection.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_migrations_run_one_at_a_time() -> None:
    schema = f"racing_{time.monotonic_ns()}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path={schema}"
    env = {**os.environ, "TEXTNLP_DATABASE__URL": url, "TEXTNLP_LOG_LEVEL": "WARNING"}
    textnlp = str(Path(sys.executable).parent / "textnlp")
    try:
        runs = [
            subprocess.Popen([textnlp, "db", "upgrade"], env=env, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        results = [(run.wait(120), run.stderr.read() if run.stderr else "") for run in runs]
        assert [code for code, _ in results] == [0, 0, 0], results  # before: 2 of 3 failed
        engine = make_engine(url)
        check_schema(engine)
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_a_schema_ahead_of_this_release_is_served_one_behind_is_not(schema_url: str) -> None:
    engine = make_engine(schema_url)
    try:
        heads = current_revisions(engine)
        newest = max(heads)
        with engine.begin() as connection:  # the next release migrated past one of our heads
            connection.execute(
                text("UPDATE alembic_version SET version_num = '9999_next' WHERE version_num = :v"),
                {"v": newest},
            )
        check_schema(engine)  # the previous release's tasks restart during a deploy
        upgrade_database(schema_url)  # and its migration task finds nothing to do (no traceback)
        assert "9999_next" in current_revisions(engine)
        with engine.begin() as connection:  # behind: a head of this release is missing
            connection.execute(text("DELETE FROM alembic_version WHERE version_num = '9999_next'"))
        with pytest.raises(ConfigError, match="run `textnlp db upgrade`"):
            check_schema(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_failed_statements_values_never_reach_a_log_line(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """They hold prompts and user ids, and errors are logged: the bound parameters (hidden by
    the engine) and PostgreSQL's DETAIL line, which quotes the row (redacted by the log)."""
    import logging

    from textnlp.observability.logging import JsonFormatter

    url = (
        f"sqlite:///{tmp_path / 'p.db'}"
        if database == "sqlite"
        else request.getfixturevalue("schema_url")
    )
    secret = " ".join(("patient", "Jane", "Roe"))  # not in this file's source (tracebacks)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE secrets_t (id TEXT PRIMARY KEY)"))
            connection.execute(text("INSERT INTO secrets_t VALUES (:v)"), {"v": secret})
        with pytest.raises(Exception) as raised, engine.begin() as connection:
            connection.execute(text("INSERT INTO secrets_t VALUES (:v)"), {"v": secret})
        record = logging.makeLogRecord({"msg": "unhandled error", "levelname": "ERROR"})
        record.exc_info = (type(raised.value), raised.value, raised.tb)
        line = JsonFormatter().format(record)
        assert "Jane Roe" not in line, line
        assert "IntegrityError" in line or "UniqueViolation" in line  # the error is still there
    finally:
        engine.dispose()


def test_a_migration_given_its_url_reads_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app built from explicit settings migrates its SQLite file on first use: a stray
    variable of the environment (read by migrations/env.py) stopped it."""
    monkeypatch.setenv("TEXTNLP_STORAGE__BUCKETT", "typo")
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        check_schema(engine)
    finally:
        engine.dispose()
