"""``JobStore.list_for(before=...)``: the jobs after a (created_at, id) place, newest first, on
SQLite and PostgreSQL alike, with jobs made in one millisecond ordered by id, and a place
taken from a time-ordered id alone (as a deleted job's is) landing right after that job."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from textnlp.adapters.db.job_store import JobStore, NewJob
from textnlp.services.list_cursor import created_time, time_ordered_hex


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    value: Engine = request.getfixturevalue(name)
    return value


def test_pages_by_place_cover_every_job_once_in_order(engine: Engine) -> None:
    store = JobStore(engine)
    ids = []
    for index in range(12):
        # Three jobs a millisecond: the id breaks the tie.
        job_id = time_ordered_hex(now_ns=1_790_000_000_000_000_000 + index // 3 * 1_000_000)
        made = created_time(job_id)
        store.create(NewJob(job_id, "owner", {"count": 1}, "q", 1, "{}", created_at=made))
        ids.append(job_id)
    store.create(NewJob(time_ordered_hex(), "someone-else", {"count": 1}, "q", 1, "{}"))
    newest_first = sorted(ids, reverse=True)

    seen: list[str] = []
    place = None
    while page := store.list_for("owner", 5, before=place):
        seen += [row.id for row in page]
        place = (page[-1].created_at, page[-1].id)
    assert seen == newest_first

    gone = newest_first[4]  # placed by its id's time, not by its row
    made = created_time(gone)
    assert made is not None
    after_gone = store.list_for("owner", 50, before=(made, gone))
    assert [row.id for row in after_gone] == newest_first[5:]


def test_a_prompt_prefix_keeps_only_the_jobs_of_those_prompt_files(engine: Engine) -> None:
    """An owner's OpenAI batches among their other jobs, chosen by the database; the prefix is
    matched as text (an owner id's ``%`` or ``_`` is no LIKE wildcard)."""
    store = JobStore(engine)
    prefix = "prompts/user-uploads/a_b%/file-"
    batches = []
    for spec in (
        {"prompt_file": f"{prefix}1.jsonl"},
        {"count": 1},
        {"prompt_file": "prompts/user-uploads/axb-c/file-2.jsonl"},  # what _ and % would match
        {"prompt_file": f"{prefix}3.jsonl"},
        {"prompt_file": None},
    ):
        job_id = time_ordered_hex()
        store.create(NewJob(job_id, "a_b%", spec, "q", 1, "{}", created_at=created_time(job_id)))
        if str(spec.get("prompt_file") or "").startswith(prefix):
            batches.append(job_id)
    listed = store.list_for("a_b%", 50, prompt_prefix=prefix)
    assert [row.id for row in listed] == batches[::-1]
    assert [row.id for row in store.list_for("a_b%", 1, prompt_prefix=prefix)] == batches[-1:]
