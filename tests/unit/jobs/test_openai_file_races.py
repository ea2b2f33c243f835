"""``DELETE /v1/files/{id}`` at the moment a batch of that file is created: the batch keeps its
input or is refused for want of it, never accepted and then failed (its file gone)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable

import pytest

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
