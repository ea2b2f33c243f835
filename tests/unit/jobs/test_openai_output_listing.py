"""``GET /v1/files`` lists the output files of all an owner's ended batches, however many
other jobs came after them (it read only their latest 1,000 jobs), and a page writes the
output files of no batch beyond what it shows (each listing wrote every ended batch's)."""

from __future__ import annotations

import io
import json

from tests.support.platform import run_worker
from tests.unit.jobs.test_openai_batch_list import ALICE, LINE, other_jobs
from textnlp.config import Settings
from textnlp.services.jobs import JobService
from textnlp.services.openai_batches import OpenAIBatchService
from textnlp.services.openai_objects import BatchCreate


def ended_batches(settings: Settings, batches: OpenAIBatchService, count: int) -> list[str]:
    """``count`` batches of one line each, run to their end; their job ids, oldest first."""
    data = io.BytesIO((json.dumps(LINE) + "\n").encode())
    file = batches.upload(ALICE, "batch.jsonl", "batch", data)
    request = BatchCreate(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    made = [batches.create(ALICE, request).id.removeprefix("batch_") for _ in range(count)]
    run_worker(settings)
    assert [batches.jobs.store.get(job).state for job in made] == ["succeeded"] * count  # type: ignore[union-attr]
    return made


def test_an_old_batchs_output_is_listed_past_a_thousand_later_jobs(
    settings: Settings, jobs: JobService
) -> None:
    batches = OpenAIBatchService(jobs)
    (job,) = ended_batches(settings, batches, 1)
    other_jobs(jobs, 1001)
    listed = batches.files(ALICE, purpose="batch_output")
    assert [item.id for item in listed.data] == [f"file-batch-{job}-output"]
    assert listed.data[0].bytes > 0 and not listed.has_more


def test_a_page_writes_no_output_beyond_it(settings: Settings, jobs: JobService) -> None:
    batches = OpenAIBatchService(jobs)
    oldest, middle, newest = ended_batches(settings, batches, 3)
    outputs = [f"file-batch-{job}-output" for job in (newest, middle, oldest)]

    def written(job: str) -> bool:
        return jobs.storage.exists(f"generated/batch-jobs/{job}/openai/output.jsonl")

    first = batches.files(ALICE, purpose="batch_output", limit=1)
    assert [item.id for item in first.data] == outputs[:1] and first.has_more
    assert not written(oldest)  # two pages away: nobody asked for it yet
    seen, after = [item.id for item in first.data], first.last_id
    while True:
        page = batches.files(ALICE, purpose="batch_output", limit=1, after=after)
        seen += [item.id for item in page.data]
        if not page.has_more:
            break
        after = page.last_id
    assert (
        seen == outputs == [item.id for item in batches.files(ALICE, purpose="batch_output").data]
    )
    assert written(oldest)
