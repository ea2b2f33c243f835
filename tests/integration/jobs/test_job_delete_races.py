"""A job deleted while a worker is still busy with it (a cancelled job's worker stores its last
chunk, keeps its records as a file), on SQLite and on the real PostgreSQL: the worker's steps
neither fail nor make the job again, and the delete waits for a store in progress. A cancelled
job whose worker heartbeated lately is not deleted at all: its last chunk, and that chunk's cost,
are still to be stored."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from tests.support.api import make_settings
from tests.support.records import stored_record
from textnlp.adapters.db.job_store import JobStore, NewJob
from textnlp.adapters.db.spending import SpendingStore
from textnlp.bootstrap import Platform
from textnlp.worker.checkpoint import Checkpointer


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    value: Engine = request.getfixturevalue(name)
    return value


def gone_since() -> datetime:
    """A ``live_since`` that takes every worker for gone: deleted as if it had crashed."""
    return datetime.now(UTC) + timedelta(seconds=1)


def live_since() -> datetime:
    """The service's rule: a worker that heartbeated in the last minute may still store."""
    return datetime.now(UTC) - timedelta(seconds=60)


def cancelled_job(store: JobStore, owner: str = "owner") -> str:
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, owner, {"template": "t", "count": 10}, "q", 10, "{}"))
    assert store.start(job_id, "w1") is not None
    store.save_records(job_id, [stored_record(0, cost_usd=1.0), stored_record(1)])
    assert store.finish(job_id, "cancelled")
    return job_id


def make_user(engine: Engine) -> str:
    user_id = uuid.uuid4().hex
    insert = (
        "INSERT INTO users (id, username, password_hash, role, active, spent_usd, session_epoch)"
        " VALUES (:id, :name, 'x', 'user', true, 0, 0)"
    )
    with engine.begin() as connection:
        connection.execute(text(insert), {"id": user_id, "name": f"u{user_id[:12]}"})
    return user_id


def test_a_cancelled_job_is_kept_while_its_worker_may_store(engine: Engine) -> None:
    store = JobStore(engine)
    owner = make_user(engine)
    job_id = cancelled_job(store, owner)  # its worker heartbeated as it stored
    kept = store.delete(job_id, live_since=live_since())
    assert kept is not None and kept.state == "cancelled"
    assert store.get(job_id) is not None
    # The worker's last chunk: stored, and its cost counted.
    assert store.save_records(job_id, [stored_record(2, cost_usd=2.0)]) == 1
    store.worker_stopped(job_id)  # it let the job go: now it can be deleted
    assert store.delete(job_id, live_since=live_since()) is not None
    assert store.get(job_id) is None
    assert SpendingStore(engine).spend(owner).spent_usd == pytest.approx(3.0)


def test_a_sqlite_delete_reads_its_job_under_the_write_lock(sqlite_engine: Engine) -> None:
    # A worker's store that commits between the delete's read of the job and its delete: its
    # records went with the job while the owner's spending got the cost read before them.
    store = JobStore(sqlite_engine)
    owner = make_user(sqlite_engine)
    job_id = cancelled_job(store, owner)
    stored: list[int] = []
    worker = threading.Thread(
        target=lambda: stored.append(store.save_records(job_id, [stored_record(2, cost_usd=2.0)]))
    )

    def store_after_the_read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        deleting = threading.current_thread().name == "deleter"
        reads_the_job = statement.lstrip().upper().startswith("SELECT") and "FROM jobs" in statement
        if deleting and reads_the_job and not worker.is_alive() and not stored:
            worker.start()
            worker.join(1.0)  # commits now, unless the delete holds the write lock

    event.listen(sqlite_engine, "after_cursor_execute", store_after_the_read)
    try:
        deleter = threading.Thread(
            target=store.delete, args=(job_id,), kwargs={"live_since": gone_since()}, name="deleter"
        )
        deleter.start()
        deleter.join(60)
        worker.join(60)
    finally:
        event.remove(sqlite_engine, "after_cursor_execute", store_after_the_read)
    assert store.get(job_id) is None and stored == [0]  # the store came after the delete
    assert SpendingStore(sqlite_engine).spend(owner).spent_usd == pytest.approx(1.0)


def test_a_worker_going_on_after_the_delete_changes_nothing(engine: Engine) -> None:
    store = JobStore(engine)
    job_id = cancelled_job(store)
    deleted = store.delete(job_id, live_since=gone_since())
    assert deleted is not None and deleted.state == "cancelled"
    # The worker's next steps, as it finds out: none raises, none stores anything.
    assert store.save_records(job_id, [stored_record(2), stored_record(3)]) == 0
    assert store.heartbeat(job_id) is None  # its checkpoint stops on that
    assert store.finish(job_id, "succeeded", result_key="r") is False
    assert store.hand_over(job_id, "r", "validation", "{}") is False
    assert store.keep_partial_result(job_id, "k", beat=None) == (False, None)
    store.worker_stopped(job_id)
    store.uncount_attempt(job_id)
    store.note_error(job_id, "late")
    assert store.get(job_id) is None
    assert store.count_records(job_id) == 0
    assert store.pending_messages(10, job_id=job_id) == []
    assert store.delete(job_id, live_since=gone_since()) is None  # twice: no such job


def test_an_active_job_is_not_deleted(engine: Engine) -> None:
    store = JobStore(engine)
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, "owner", {"template": "t", "count": 10}, "q", 10, "{}"))
    assert store.start(job_id, "w1") is not None
    kept = store.delete(job_id, live_since=gone_since())
    assert kept is not None and kept.state == "running"
    assert store.get(job_id) is not None
    assert store.save_records(job_id, [stored_record(0)]) == 1


def test_the_delete_waits_for_a_store_in_progress_and_takes_its_records(
    pg_engine: Engine,
) -> None:
    store = JobStore(pg_engine)
    job_id = cancelled_job(store)
    # A worker's store under way: the row held as a record's foreign key holds it.
    deleter = threading.Thread(
        target=store.delete, args=(job_id,), kwargs={"live_since": gone_since()}
    )
    with pg_engine.connect() as worker:
        held = worker.begin()
        worker.execute(text("SELECT id FROM jobs WHERE id = :id FOR KEY SHARE"), {"id": job_id})
        insert = "INSERT INTO job_records (job_id, index, ok, payload) VALUES (:id, 5, true, '')"
        worker.execute(text(insert), {"id": job_id})
        try:
            deleter.start()
            deleter.join(0.5)
            assert deleter.is_alive()  # held by the worker's transaction, not past it
        finally:
            held.commit()
    deleter.join(30)
    assert store.get(job_id) is None
    assert store.count_records(job_id) == 0  # the late record went with the job


def test_the_workers_side_lets_a_deleted_job_go(
    pg_jobs_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    with Platform(make_settings(tmp_path, pg_jobs_url)) as platform:
        store, runs, storage = platform.job_store, platform.job_runs, platform.storage
        job_id = cancelled_job(store)
        assert store.delete(job_id, live_since=gone_since()) is not None
        # A checkpoint after the delete stops the run, as a cancel does.
        checkpoint = Checkpointer(runs, job_id, 2, asyncio.Event())
        checkpoint.flush()
        assert checkpoint.cancelled
        # The file its last step made is not kept for a job that is gone.
        late = tmp_path / "late.jsonl"
        late.write_text('{"index": 0}\n')
        key = runs.upload_result(job_id, "jsonl", late)
        assert storage.exists(key)
        assert runs.finish_generation(job_id, key) is False
        assert not storage.exists(key)
        kept = runs.upload_result(job_id, "jsonl", late, partial=True)
        assert runs.keep_partial_result(job_id, kept, beat=None) is False
        assert store.get(job_id) is None
