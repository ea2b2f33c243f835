"""How a job ends when its last records race a cancel or its workers die, and what its
progress and error say: against the composition root's job services on SQLite (the worker's
own calls, in order, without a model)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.platform import local_platform
from tests.support.records import stored_record
from textnlp.adapters.storage import Keys
from textnlp.bootstrap import Platform
from textnlp.domain import Record
from textnlp.domain.records import RecordStatus
from textnlp.errors import Conflict, QuotaExceeded
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.job_runs import JobRuns
from textnlp.worker.runner import JobRunner

OWNER = Owner(id="u1")


@pytest.fixture
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with local_platform(tmp_path_factory.mktemp("home")) as built:
        yield built


def record(index: int, status: RecordStatus = "ok") -> Record:
    return stored_record(index, status, cells={} if status != "ok" else None)  # a candidate's


def running_job(platform: Platform, template: str, count: int) -> str:
    view = platform.jobs.submit(OWNER, JobSpec(template=template, count=count))
    assert platform.job_runs.start_attempt(view.id, "w1") is not None
    return view.id


def test_a_cancel_while_the_last_records_are_made_keeps_them_all(platform: Platform) -> None:
    """The worker's run ended normally after the user's cancel (within its last chunk): the
    job stays cancelled and keeps every record as its result, as a cancel mid-run keeps those
    made; it had no result at all."""
    runs = platform.job_runs
    job_id = running_job(platform, "news-headline", 4)
    runs.save_chunk(job_id, [record(i) for i in range(4)])
    platform.jobs.cancel(OWNER, job_id)
    key = "generated/batch-jobs/x/records.jsonl"
    assert runs.finish_generation(job_id, key) is True  # its owner is told
    row = runs.get(job_id)
    assert row is not None and (row.state, row.result_key) == ("cancelled", key)
    assert row.heartbeat_at is None  # its worker is done
    assert runs.finish_generation(job_id, "other") is False  # once


def runner(platform: Platform) -> JobRunner:
    return JobRunner(platform.job_runs, platform.generation, chunk_size=4)


def kept_indices(platform: Platform, job_id: str) -> list[int]:
    row = platform.job_runs.get(job_id)
    assert row is not None and row.result_key
    lines = platform.jobs.storage.get_bytes(row.result_key).decode().splitlines()
    return [json.loads(line)["index"] for line in lines]


def files_of(platform: Platform, job_id: str) -> list[str]:
    return platform.jobs.storage.list(f"{Keys.BATCH_JOBS}{job_id}/")


def test_a_chunk_stored_after_a_duplicate_kept_the_file_is_kept_too(platform: Platform) -> None:
    """A duplicate delivery of a cancelled job settles it (keeps its records as a file) while
    the job's worker still makes its last chunk; that worker's settle makes the file again.
    (It found the file kept and left it: the chunk was stored, and missing from the file.)"""
    runs = platform.job_runs
    job_id = running_job(platform, "news-headline", 8)
    runs.save_chunk(job_id, [record(i) for i in range(4)])
    platform.jobs.cancel(OWNER, job_id)
    runner(platform).settle(job_id)  # the duplicate delivery's
    assert kept_indices(platform, job_id) == [0, 1, 2, 3]
    runs.save_chunk(job_id, [record(4), record(5)])  # the first worker's last chunk
    runner(platform).settle(job_id)  # it saw the cancel
    assert kept_indices(platform, job_id) == [0, 1, 2, 3, 4, 5]
    assert len(files_of(platform, job_id)) == 1  # the short file is gone
    row = runs.get(job_id)
    assert row is not None and row.heartbeat_at is None  # its page stops watching
    runner(platform).settle(job_id)  # nothing stored since: the file stays
    again = runs.get(job_id)
    assert again is not None and again.result_key == row.result_key


def test_a_file_made_while_a_chunk_is_stored_is_not_kept(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers settle a cancelled job at once: the file made from the records read before
    the other's last chunk is not kept (its upload, landing last, made the kept file short)."""
    runs = platform.job_runs
    job_id = running_job(platform, "news-headline", 8)
    runs.save_chunk(job_id, [record(i) for i in range(4)])
    platform.jobs.cancel(OWNER, job_id)
    read = JobRuns.stored_records
    interleaved: list[bool] = []

    def read_then_interleave(self: JobRuns, job: str, **kw: bool) -> Iterator[Record]:
        records = list(read(self, job, **kw))
        if not interleaved:  # 4 records read: the other worker stores its last chunk and
            interleaved.append(True)  # settles before this file is uploaded
            runs.save_chunk(job_id, [record(4), record(5)])
            runner(platform).settle(job_id)
        return iter(records)

    monkeypatch.setattr(JobRuns, "stored_records", read_then_interleave)
    runner(platform).settle(job_id)
    assert interleaved and kept_indices(platform, job_id) == [0, 1, 2, 3, 4, 5]
    row = runs.get(job_id)
    assert row is not None and files_of(platform, job_id) == [row.result_key]


def test_a_recipe_job_is_complete_only_with_every_record_accepted(platform: Platform) -> None:
    """The dead-letter sweep finishes a job from the store only when it is complete: a
    recipe's rejected candidates are stored too, and never count (it finished short)."""
    runs = platform.job_runs
    job_id = running_job(platform, "product-reviews", 3)
    runs.save_chunk(job_id, [record(0), record(1, "rejected"), record(2, "rejected")])
    row = runs.get(job_id)
    assert row is not None and not runs.is_complete(row)
    runs.save_chunk(job_id, [record(3), record(4, "failed"), record(5)])
    row = runs.get(job_id)
    assert row is not None and runs.is_complete(row)
    # Progress: 3 accepted of 3; 1 failed (rejected candidates are no failures).
    view = platform.jobs.status(OWNER, job_id)
    assert (view.progress.done, view.progress.total, view.progress.failed) == (3, 3, 1)


def test_a_capped_job_says_how_many_records_it_kept(platform: Platform) -> None:
    runs = platform.job_runs
    job_id = running_job(platform, "product-reviews", 2)
    runs.save_chunk(job_id, [record(0), *(record(i, "rejected") for i in range(1, 8))])
    runs.fail_capped(job_id, QuotaExceeded("only 1 of 2 records passed"))
    view = platform.jobs.status(OWNER, job_id)
    assert view.error is not None and view.error.endswith("; 1 of 2 records kept")


def test_a_job_whose_every_record_failed_offers_no_empty_file(platform: Platform) -> None:
    # Its file of no record was offered: 200 with 0 bytes, where a job that kept no record
    # answers 409.
    runs = platform.job_runs
    job_id = running_job(platform, "news-headline", 2)
    runs.save_chunk(job_id, [record(0, "failed"), record(1, "failed")])
    key = "generated/batch-jobs/x/records.jsonl"
    platform.jobs.storage.put_bytes(key, b"")
    assert runs.finish_generation(job_id, key) is True
    row = runs.get(job_id)
    assert row is not None and (row.state, row.result_key) == ("failed", None)
    assert not platform.jobs.storage.exists(key)
    with pytest.raises(Conflict, match="failed with no record kept: every record failed"):
        platform.jobs.results(OWNER, job_id)
