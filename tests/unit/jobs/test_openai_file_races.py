"""``DELETE /v1/files/{id}`` at the moment a batch of that file is created: the batch keeps its
input or is refused for want of it, never accepted and then failed (its file gone)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.platform import run_worker
from textnlp.config import Settings
from textnlp.errors import Conflict, NotFound
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService
from textnlp.services.openai_batches import OpenAIBatchService
from textnlp.services.openai_objects import BatchCreate

ALICE = Owner(id="alice")
LINE = {
    "custom_id": "a",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "fake-fast", "messages": [{"role": "user", "content": "Say a"}]},
}


def test_a_file_deleted_while_its_batch_is_created(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = OpenAIBatchService(jobs)
    data = io.BytesIO((json.dumps(LINE) + "\n").encode())
    file = batches.upload(ALICE, "batch.jsonl", "batch", data)
    outcome: list[str] = []

    def delete() -> None:
        try:
            batches.delete_file(ALICE, file.id)
            outcome.append("deleted")
        except Conflict:
            outcome.append("kept")

    check_of = jobs._prompt_file_check
    deleter = threading.Thread(target=delete)

    def deleted_meanwhile(spec: JobSpec, owner: Owner) -> Callable[[], None] | None:
        check = check_of(spec, owner)
        assert check is not None

        def then_delete() -> None:
            check()  # the file is there: the batch may be stored...
            deleter.start()  # ...and the file is deleted before it is (the other request)
            deleter.join(timeout=1)

        return then_delete

    monkeypatch.setattr(jobs, "_prompt_file_check", deleted_meanwhile)
    request = BatchCreate(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = batches.create(ALICE, request)
    deleter.join(timeout=30)
    assert outcome == ["kept"]  # the delete waited for the batch, then refused
    assert batches.file(ALICE, file.id).id == file.id
    with pytest.raises(Conflict):
        batches.delete_file(ALICE, file.id)
    batches.cancel(ALICE, batch.id)
    batches.delete_file(ALICE, file.id)
    with pytest.raises(NotFound):
        batches.file(ALICE, file.id)


READERS: dict[str, Callable[[OpenAIBatchService, str], object]] = {
    "files.list": lambda batches, _: batches.files(ALICE),
    "batches.list": lambda batches, _: batches.list_batches(ALICE),
    "batches.retrieve": lambda batches, job: batches.retrieve(ALICE, f"batch_{job}"),
    "files.content": lambda batches, job: batches.content(ALICE, f"file-batch-{job}-output"),
}


@pytest.mark.parametrize("moment", ["before its files are written", "after they are written"])
@pytest.mark.parametrize("reader", list(READERS))
def test_a_batch_whose_job_is_deleted_while_its_files_are_written(
    settings: Settings,
    jobs: JobService,
    monkeypatch: pytest.MonkeyPatch,
    moment: str,
    reader: str,
) -> None:
    # A batch's output and error files are written when first read; a job deleted meanwhile
    # (`jobs delete`, a purge) left them behind, named by no job, and the read failed naming
    # the storage key that was gone ("no object 'generated/batch-jobs/...' in storage").
    batches = OpenAIBatchService(jobs)
    data = io.BytesIO((json.dumps(LINE) + "\n").encode())
    file = batches.upload(ALICE, "batch.jsonl", "batch", data)
    request = BatchCreate(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    job = batches.create(ALICE, request).id.removeprefix("batch_")
    run_worker(settings)
    assert jobs.store.get(job).state == "succeeded"  # type: ignore[union-attr]
    if moment.startswith("before"):
        records = jobs.store.iter_records

        def deleted_first(job_id: str, **kwargs: Any) -> Iterator[Any]:
            jobs.delete(ALICE, job_id)
            return records(job_id, **kwargs)

        monkeypatch.setattr(jobs.store, "iter_records", deleted_first)
    else:
        put_file = jobs.storage.put_file

        def deleted_after(key: str, *args: Any, **kwargs: Any) -> None:
            put_file(key, *args, **kwargs)
            if key.endswith("/output.jsonl"):
                jobs.delete(ALICE, job)

        monkeypatch.setattr(jobs.storage, "put_file", deleted_after)
    if reader.endswith(".list"):
        listed = READERS[reader](batches, job)
        assert job not in str(listed)
    else:
        with pytest.raises(NotFound) as gone:
            READERS[reader](batches, job)
        assert "generated/" not in gone.value.message and job in gone.value.message
    assert jobs.store.get(job) is None
    assert jobs.storage.list(f"generated/batch-jobs/{job}/") == []
