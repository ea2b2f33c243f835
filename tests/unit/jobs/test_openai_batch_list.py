"""``GET /v1/batches`` pages through all of an owner's batches, however many other jobs lie
between them, and goes on past a batch deleted between two pages (its id says when it was
made); an older, random id that names no batch is refused, never the list started again."""

from __future__ import annotations

import io
import json

import pytest

from textnlp.adapters.db.job_store import NewJob
from textnlp.errors import InvalidParameter
from textnlp.services.job_models import Owner
from textnlp.services.jobs import JobService
from textnlp.services.list_cursor import created_time, time_ordered_hex
from textnlp.services.openai_batches import _LISTING_CHUNK, OpenAIBatchService
from textnlp.services.openai_objects import BatchCreate

ALICE = Owner(id="alice")
LINE = {
    "custom_id": "a",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "fake-fast", "messages": [{"role": "user", "content": "Say a"}]},
}


def other_jobs(jobs: JobService, count: int) -> None:
    """``count`` of Alice's jobs that are not batches, stored as a submit stores them."""
    for _ in range(count):
        job_id = time_ordered_hex()
        jobs.store.create(
            NewJob(
                id=job_id,
                owner_id=ALICE.id,
                spec={"model": "fake-fast", "count": 1},
                queue="generation",
                total=1,
                body="{}",
                created_at=created_time(job_id),
            )
        )


def paged(batches: OpenAIBatchService, delete_after: str | None = None) -> list[str]:
    """Every batch id, a page of one at a time as the SDK pages; ``delete_after``'s job is
    deleted once its page is read."""
    seen: list[str] = []
    after = None
    while True:
        page = batches.list_batches(ALICE, after=after, limit=1)
        seen += [batch.id for batch in page.data]
        if page.last_id == delete_after and delete_after is not None:
            batches.cancel(ALICE, delete_after)
            batches.jobs.delete(ALICE, delete_after.removeprefix("batch_"))
        if not page.has_more:
            return seen
        after = page.last_id


def test_batches_are_listed_past_many_other_jobs_and_a_deleted_one(jobs: JobService) -> None:
    batches = OpenAIBatchService(jobs)
    file = batches.upload(ALICE, "b.jsonl", "batch", io.BytesIO((json.dumps(LINE) + "\n").encode()))
    request = BatchCreate(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    made = []
    for _ in range(3):
        made.append(batches.create(ALICE, request).id)
        other_jobs(jobs, _LISTING_CHUNK + 100)  # more than a chunk of the table between two
    newest_first = made[::-1]
    assert paged(batches) == newest_first
    assert [b.id for b in batches.list_batches(ALICE, limit=20).data] == newest_first

    assert paged(batches, delete_after=made[1]) == newest_first  # none lost, none twice
    assert paged(batches) == [made[2], made[0]]


def test_an_unplaceable_after_is_refused(jobs: JobService) -> None:
    batches = OpenAIBatchService(jobs)
    # A random (v4-like) id; one laid out as a time-ordered id whose time is past any date
    # (year 10889: made up, never made here).
    beyond_dates = "batch_" + "ffffffffffff" + "7000" + "8" + "0" * 15
    for after in ("batch_" + "ab" * 16, "batch_nope", "file-x", beyond_dates):
        with pytest.raises(InvalidParameter) as refused:
            batches.list_batches(ALICE, after=after)
        assert refused.value.details["parameter"] == "after"
