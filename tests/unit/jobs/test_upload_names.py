"""Prompt-file uploads: a key made from the file's content (a retry is the same request), and
any file name stored under a safe key, never an error naming the storage layout."""

from __future__ import annotations

import pytest

from textnlp.adapters.storage.keys import check_key
from textnlp.errors import InvalidInput, NotFound
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import MAX_UPLOAD_KEY_NAME, JobService, upload_name

ALICE = Owner(id="3f1c2a9e-5b7d-4c1e-9a2b-0d6e8f7a1b2c")
BOB = Owner(id="bob")
PROMPTS = b'{"prompt": "Say hi"}\n'


def submit_file(jobs: JobService, owner: Owner, key: str, idempotency_key: str) -> str:
    spec = JobSpec(prompt_file=key, model="fake-fast")
    return jobs.submit(owner, spec, idempotency_key=idempotency_key).id


def test_the_same_file_uploads_to_the_same_key_and_a_retry_gets_its_job(jobs: JobService) -> None:
    first = jobs.upload_prompts(ALICE, "p.jsonl", PROMPTS)
    again = jobs.upload_prompts(ALICE, "p.jsonl", PROMPTS)
    assert again == first
    assert jobs.storage.list(f"prompts/user-uploads/{ALICE.id}/") == [first]  # no second copy
    job = submit_file(jobs, ALICE, first, "retry-78")
    assert submit_file(jobs, ALICE, again, "retry-78") == job
    changed = jobs.upload_prompts(ALICE, "p.jsonl", b'{"prompt": "Say bye"}\n')
    assert changed != first and jobs.storage.get_bytes(first) == PROMPTS
    with pytest.raises(InvalidInput, match="different request"):  # another file, another request
        submit_file(jobs, ALICE, changed, "retry-78")
    theirs = jobs.upload_prompts(BOB, "p.jsonl", PROMPTS)
    assert theirs != first and theirs.startswith("prompts/user-uploads/bob/")


@pytest.mark.parametrize(
    "name",
    [
        "café.jsonl",
        "100%.jsonl",
        "a:b.jsonl",
        "a#b.jsonl",
        "a?b.jsonl",
        "x%2Fy.jsonl",
        "a=b.jsonl",
        "my file.csv",
        "..jsonl",
        "back\\slash.jsonl",
        "new\nline.jsonl",
        "nul\x00.jsonl",
        "bad\udce9.jsonl",  # a file system's undecodable byte
        "日本語" * 60 + ".jsonl",
    ],
)
def test_any_file_name_is_stored_under_a_safe_key(jobs: JobService, name: str) -> None:
    data = b"prompt\nSay hi\n" if name.endswith(".csv") else PROMPTS
    key = jobs.upload_prompts(ALICE, name, data)
    assert check_key(key) == key
    assert key.startswith(f"prompts/user-uploads/{ALICE.id}/")
    stored = key.rsplit("/", 1)[1]
    assert len(stored) <= 17 + MAX_UPLOAD_KEY_NAME and stored.endswith(name[-4:])
    assert jobs.storage.get_bytes(key) == data
    assert submit_file(jobs, ALICE, key, f"k-{len(name)}") is not None  # a valid prompt_file


def test_the_escaped_name_is_readable_and_tells_names_apart() -> None:
    assert upload_name("café.jsonl", PROMPTS).endswith("-caf=C3=A9.jsonl")
    assert upload_name("100%.jsonl", PROMPTS).endswith("-100=25.jsonl")
    assert upload_name("a=3A.jsonl", PROMPTS) != upload_name("a:.jsonl", PROMPTS)
    assert upload_name("p.jsonl", PROMPTS) != upload_name("p.jsonl", PROMPTS + b"\n")


@pytest.mark.parametrize("name", ["a/b.jsonl", "../p.jsonl", "/etc/p.jsonl"])
def test_a_name_with_a_slash_is_refused_without_the_storage_layout(
    jobs: JobService, name: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        jobs.upload_prompts(ALICE, name, PROMPTS)
    assert "without '/'" in refused.value.message
    assert "user-uploads" not in refused.value.message and ALICE.id not in refused.value.message
    assert jobs.storage.list("prompts/user-uploads/") == []


def test_a_file_deleted_after_the_submit_read_it_stores_no_job(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = jobs.upload_prompts(ALICE, "p.jsonl", PROMPTS)
    read = jobs.check

    def read_then_deleted(spec: JobSpec, owner: Owner) -> int:
        total = read(spec, owner)
        jobs.delete_upload(owner, key.rsplit("/", 1)[-1])  # no job yet: the delete goes through
        return total

    monkeypatch.setattr(jobs, "check", read_then_deleted)
    with pytest.raises(NotFound, match="it was deleted"):
        submit_file(jobs, ALICE, key, "after-delete")
    assert jobs.store.list_for(ALICE.id) == []
    assert jobs.store.pending_messages(10) == []  # nothing to publish either
