"""A prompt file's delete and a submit naming it are serialised (``JobStore``'s uploads lock),
on SQLite and on the real PostgreSQL: a job is never stored for a file deleted meanwhile, and a
file is never deleted under a job stored meanwhile."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine

from textnlp.adapters.db.job_store import JobStore, NewJob
from textnlp.errors import NotFound

KEY = "prompts/user-uploads/alice/p-0123456789abcdef.jsonl"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> JobStore:
    engine: Engine = request.getfixturevalue(
        f"{'pg' if request.param == 'postgres' else 'sqlite'}_engine"
    )
    return JobStore(engine)


def new_job(owner: str = "alice") -> NewJob:
    spec = {"prompt_file": KEY}
    return NewJob(uuid.uuid4().hex, owner, spec, "q", 1, "{}")


def test_a_submit_waits_for_a_delete_in_progress_and_stores_nothing(store: JobStore) -> None:
    files = {KEY}
    deleting, release = threading.Event(), threading.Event()
    submitted: list[BaseException | str] = []

    def delete() -> None:
        deleting.set()
        assert release.wait(10)
        files.discard(KEY)

    def check() -> None:
        if KEY not in files:
            raise NotFound("no prompt file: it was deleted")

    def submit() -> None:
        try:
            submitted.append(store.create(new_job(), check_prompt_file=check).id)
        except NotFound as exc:
            submitted.append(exc)

    deleter = threading.Thread(target=store.delete_prompt_file, args=("alice", KEY, delete))
    deleter.start()
    assert deleting.wait(10)
    submitter = threading.Thread(target=submit)
    submitter.start()
    submitter.join(0.5)
    assert submitter.is_alive()  # held by the delete's lock, not past it
    release.set()
    deleter.join(10)
    submitter.join(30)
    assert len(submitted) == 1 and isinstance(submitted[0], NotFound)
    assert store.list_for("alice") == []  # no job, no outbox message
    assert store.pending_messages(10) == []


def test_a_delete_after_a_submit_is_refused_and_another_owners_is_not_held(
    store: JobStore,
) -> None:
    job = store.create(new_job(), check_prompt_file=lambda: None)
    deleted: list[str] = []
    assert store.delete_prompt_file("alice", KEY, lambda: deleted.append(KEY)) == [job.id]
    assert deleted == []
    # Bob's lock is his own: his delete goes through while Alice's submit is stored.
    assert store.delete_prompt_file("bob", KEY, lambda: deleted.append("bob")) == []
    assert deleted == ["bob"]
