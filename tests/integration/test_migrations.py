"""The migrations build the schema the tables declare, on SQLite and on the machine's
PostgreSQL: Alembic's autogenerate finds nothing left to migrate (a column added to a table
without its migration, or the reverse, fails here before a deployment's server refuses it)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

import textnlp.adapters.db as db_package
from tests.support.api import postgres_schema_url
from textnlp.adapters.db.base import Base
from textnlp.adapters.db.schema import LEGACY_COLUMNS, upgrade_database


def _differences(url: str) -> list[object]:
    for module in pkgutil.iter_modules(db_package.__path__):  # every table registered
        importlib.import_module(f"textnlp.adapters.db.{module.name}")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    return [d for d in found if not _legacy(d)]


def _legacy(difference: object) -> bool:
    """A column kept for the previous release (``schema.LEGACY_COLUMNS``), not declared."""
    if not (isinstance(difference, tuple) and difference[0] == "remove_column"):
        return False
    _, _, table, column = difference
    return (table, column.name) in LEGACY_COLUMNS


# SQLite cannot reflect an index on an expression (lower(username)): PostgreSQL compares it.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_migrated_schema_is_the_declared_one(database: str, tmp_path: Path) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        upgrade_database(url)
        assert _differences(url) == []
        return
    for url in postgres_schema_url():  # migrated by the helper, in a schema of its own
        assert _differences(url) == []


@pytest.mark.filterwarnings("ignore:.*expression-based index")
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_previous_release_runs_on_the_migrated_schema(database: str, tmp_path: Path) -> None:
    """Migrations run before a deployment's tasks roll: the previous release's code reads the
    migrated tables meanwhile (0007 dropped ``users.sessions_after``, and every login on the
    previous release's tasks was a 500). Down to the previous revision and up again works too."""
    from alembic import command
    from sqlalchemy import inspect, text

    from textnlp.adapters.db.schema import _config

    urls = [f"sqlite:///{tmp_path / 'migrated.db'}"] if database == "sqlite" else None
    for url in urls or postgres_schema_url():
        upgrade_database(url)
        engine = create_engine(url)
        try:
            with engine.begin() as connection:  # what the previous release's code asks
                connection.execute(
                    text(
                        "INSERT INTO users (id, username, password_hash, role, active, "
                        "created_at, sessions_after) VALUES ('u1', 'old', 'x', 'user', true, "
                        "CURRENT_TIMESTAMP, 0)"
                    )
                )
                assert connection.execute(text("SELECT sessions_after FROM users")).all()
            command.downgrade(_config(url), "0006_user_sessions_after")
            command.upgrade(_config(url), "heads")
            columns = {c["name"] for c in inspect(engine).get_columns("users")}
            assert {"sessions_after", "session_epoch"} <= columns
        finally:
            engine.dispose()


def test_a_migration_the_database_refuses_is_said_as_such(tmp_path: Path) -> None:
    """Its error was "cannot reach the database" (a statement refused is no outage)."""
    import sqlite3

    from textnlp.errors import ConfigError

    path = tmp_path / "migrated.db"
    upgrade_database(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:  # back before 0008, without the table it alters
        connection.execute(
            "UPDATE alembic_version SET version_num = '0004_job_cost' "
            "WHERE version_num = '0015_jobs_owner_listing'"
        )
        connection.execute("DROP INDEX ix_jobs_finished_at")
        connection.execute("DROP TABLE job_outbox")
    with pytest.raises(ConfigError, match="a migration failed on the database at .*job_outbox"):
        upgrade_database(f"sqlite:///{path}")


def test_jobs_that_had_ended_count_as_told(tmp_path: Path) -> None:
    """0011 adds ``jobs.notified_at``: a job that ended before it is not told of again (a
    duplicate delivery of its message would have sent a second notice); a live one is told."""
    from alembic import command
    from sqlalchemy import text

    from textnlp.adapters.db.schema import _config

    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    command.upgrade(_config(url), "0010_jobs_finished_at")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for job_id, state, finished in (
                ("a" * 32, "succeeded", "2026-01-02"),
                ("b" * 32, "running", None),
                ("c" * 32, "cancelled", None),
            ):
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, owner_id, state, spec, queue, total, done, "
                        "failed_records, attempts, created_at, finished_at) VALUES (:id, 'u1', "
                        ":state, '{}', 'q', 1, 0, 0, 0, '2026-01-01', :finished)"
                    ),
                    {"id": job_id, "state": state, "finished": finished},
                )
        command.upgrade(_config(url), "heads")
        with engine.connect() as connection:
            told: dict[str, object] = dict(
                connection.execute(text("SELECT id, notified_at FROM jobs")).all()
            )
    finally:
        engine.dispose()
    assert told["a" * 32] is not None and told["c" * 32] is not None
    assert told["b" * 32] is None
