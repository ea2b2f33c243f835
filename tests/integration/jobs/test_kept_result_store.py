"""The SQL of a cancelled job's kept file, on SQLite and on the real PostgreSQL: the file is
kept only when no record was stored since the heartbeat its maker read (a timestamp read back
must compare equal to itself on both), and it replaces the file kept before."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine

from tests.support.records import stored_record
from textnlp.adapters.db.job_store import JobStore, NewJob


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    value: Engine = request.getfixturevalue(name)
    return value


def cancelled_job(store: JobStore) -> str:
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, "owner", {"template": "t", "count": 10}, "q", 10, "{}"))
    assert store.start(job_id, "w1") is not None
    store.save_records(job_id, [stored_record(0), stored_record(1)])
    assert store.finish(job_id, "cancelled")
    return job_id


def test_a_file_is_kept_when_nothing_was_stored_since_its_records_were_read(
    engine: Engine,
) -> None:
    store = JobStore(engine)
    job_id = cancelled_job(store)
    read = store.get(job_id)
    assert read is not None and read.heartbeat_at is not None
    assert store.keep_partial_result(job_id, "a", beat=read.heartbeat_at) == (True, None)
    row = store.get(job_id)
    assert row is not None and (row.result_key, row.heartbeat_at) == ("a", None)
    # Read again (no heartbeat now): a later file replaces it, and names the one it replaced.
    assert store.keep_partial_result(job_id, "b", beat=None) == (True, "a")


def test_a_record_stored_meanwhile_refuses_the_file(engine: Engine) -> None:
    store = JobStore(engine)
    job_id = cancelled_job(store)
    read = store.get(job_id)
    assert read is not None
    store.save_records(job_id, [stored_record(2)])  # the other worker's last chunk
    assert store.keep_partial_result(job_id, "a", beat=read.heartbeat_at) == (False, None)
    row = store.get(job_id)
    assert row is not None and row.result_key is None and row.heartbeat_at is not None


def test_a_live_job_keeps_no_partial_file(engine: Engine) -> None:
    store = JobStore(engine)
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, "owner", {"template": "t", "count": 10}, "q", 10, "{}"))
    row = store.start(job_id, "w1")
    assert row is not None
    assert store.keep_partial_result(job_id, "a", beat=row.heartbeat_at) == (False, None)
