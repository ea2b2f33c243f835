"""Pages of a job's stored records (``JobStore.page_records``/``scan_records`` and the
viewer's ``JobRecords``) on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.support.records import stored_record
from textnlp.adapters.db.job_store import JobStore, NewJob
from textnlp.adapters.storage.local import LocalStorage
from textnlp.domain import Record
from textnlp.services import job_records
from textnlp.services.job_records import JobRecords, RecordQuery

COUNT = 300


def record(index: int) -> Record:
    failed = index % 7 == 0
    return stored_record(
        index,
        "failed" if failed else "ok",
        text=f"text {index}" + (" special" if index % 50 == 49 else ""),
    ).model_copy(
        update={
            "variables": {"kind": "odd" if index % 2 else "even"},
            "error": "boom" if failed else None,
        }
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> JobStore:
    engine: Engine = request.getfixturevalue(
        f"{'pg' if request.param == 'postgres' else 'sqlite'}_engine"
    )
    return JobStore(engine)


def stored_job(store: JobStore) -> str:
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, "alice", {"template": "t", "count": COUNT}, "q", COUNT, "{}"))
    # In chunks and out of order, as workers store them.
    for start in (200, 0, 100):
        store.save_records(job_id, [record(i) for i in range(start, start + 100)])
    return job_id


def test_pages_by_position(store: JobStore) -> None:
    job_id = stored_job(store)
    assert [r.index for r in store.page_records(job_id, limit=5)] == [0, 1, 2, 3, 4]
    assert [r.index for r in store.page_records(job_id, offset=298, limit=5)] == [298, 299]
    ok = [i for i in range(COUNT) if i % 7]
    assert [r.index for r in store.page_records(job_id, ok=True, offset=10, limit=5)] == ok[10:15]
    failed = [r.index for r in store.page_records(job_id, ok=False, limit=100)]
    assert failed == list(range(0, COUNT, 7))
    assert store.page_records(uuid.uuid4().hex) == []


def test_scans_by_cursor(store: JobStore) -> None:
    job_id = stored_job(store)
    batch = store.scan_records(job_id, after=97, limit=4)
    assert [i for i, _ in batch] == [98, 99, 100, 101]
    assert Record.model_validate_json(batch[0][1]) == record(98)
    assert [i for i, _ in store.scan_records(job_id, ok=False, after=7, limit=2)] == [14, 21]
    assert store.has_records(job_id) and not store.has_records(uuid.uuid4().hex)


def test_viewer_pages(store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = stored_job(store)
    row = store.get(job_id)
    assert row is not None
    viewer = JobRecords(store, LocalStorage(tmp_path))

    first = viewer.page(row, RecordQuery(), limit=50)
    assert [r.index for r in first.records] == list(range(50))
    assert first.has_more and not first.by_cursor and first.source == "database"
    last = viewer.page(row, RecordQuery(), offset=250, limit=50)
    assert [r.index for r in last.records] == list(range(250, 300)) and not last.has_more

    odd_failed = viewer.page(row, RecordQuery(status="failed", label="kind=odd"), limit=3)
    assert [r.index for r in odd_failed.records] == [7, 21, 35]
    assert odd_failed.by_cursor and odd_failed.next_after == 35
    following = viewer.page(row, odd_failed.query, after=35, limit=3)
    assert [r.index for r in following.records] == [49, 63, 77]

    special = viewer.page(row, RecordQuery(search="SPECIAL"), limit=50)
    assert [r.index for r in special.records] == [49, 99, 149, 199, 249, 299]
    assert not special.has_more and special.scanned_to is None

    # A scan stops on its budget and says how far it looked.
    monkeypatch.setattr(job_records, "SCAN_BUDGET", 60)
    stopped = viewer.page(row, RecordQuery(search="special"), limit=50)
    assert [r.index for r in stopped.records] == [49]
    assert stopped.scanned_to == 59 and stopped.next_after == 59 and stopped.has_more
    on = viewer.page(row, stopped.query, after=stopped.next_after, limit=50)
    assert [r.index for r in on.records] == [99] and on.scanned_to == 119


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_records_from_the_result_file(store: JobStore, tmp_path: Path, fmt: str) -> None:
    """A job whose rows are gone shows the accepted records of its result file, in any format."""
    from textnlp.adapters.storage import Keys
    from textnlp.generation.writers import write_dataset

    job_id = uuid.uuid4().hex
    store.create(
        NewJob(job_id, "alice", {"template": "t", "count": 30, "format": fmt}, "q", 30, "{}")
    )
    accepted = [record(i) for i in range(30) if i % 7]
    # What a file holds but a plain read changes: an object variable (CSV repr), a column of
    # mixed values (Parquet's JSON text) and a text past csv's default field limit.
    odd_values: list[Any] = [{"k": [1, "x"]}, "plain"]
    for at, value in enumerate(odd_values):
        variables = {**accepted[at].variables, "extra": value}
        accepted[at] = accepted[at].model_copy(update={"variables": variables})
    accepted[2] = accepted[2].model_copy(update={"text": accepted[2].text + " long" * 40_000})
    local = tmp_path / f"records.{fmt}"
    write_dataset(local, accepted)
    storage = LocalStorage(tmp_path / "storage")
    key = Keys.batch_result(job_id, fmt)
    storage.put_file(key, local)
    store.start(job_id, "w")
    store.finish(job_id, "succeeded", result_key=key)
    row = store.get(job_id)
    assert row is not None
    viewer = JobRecords(store, storage)

    first = viewer.page(row, RecordQuery(), limit=10)
    assert first.source == "result file" and first.has_more
    assert [r.index for r in first.records] == [r.index for r in accepted[:10]]
    assert [r.variables["extra"] for r in first.records[:2]] == odd_values
    assert first.records[2].text == accepted[2].text
    assert first.records[0].provenance.seed == accepted[0].provenance.seed
    rest = viewer.page(row, RecordQuery(), offset=20, limit=10)
    assert [r.index for r in rest.records] == [r.index for r in accepted[20:]]
    odd = viewer.page(row, RecordQuery(label="kind=odd", search="TEXT"), limit=100)
    assert [r.index for r in odd.records] == [r.index for r in accepted if r.index % 2]
    assert viewer.page(row, RecordQuery(status="failed")).records == []
