"""A user's uploads (prompt files and OpenAI batch files together) are bounded by
``api.max_upload_bytes_per_user``: past it an upload answers 429 ``quota_exceeded`` and is not
stored; the same file again takes no more room, and a deleted file frees its room."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.api import PASSWORD, Api, make_settings, start_api

UPLOADS = "/api/v1/generate/batch/uploads"
QUOTA = 1500


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = make_settings(
        tmp_path_factory.mktemp("quota"), api={"max_upload_bytes_per_user": QUOTA}
    )
    yield from start_api(settings)


def prompts(n: int) -> bytes:
    return "".join(json.dumps({"prompt": f"prompt {i:04d}"}) + "\n" for i in range(n)).encode()


def batch_file(n: int) -> bytes:
    line = {
        "method": "POST",
        "url": "/v1/completions",
        "body": {"model": "smollm2-135m", "prompt": "x"},
    }
    return "".join(json.dumps({**line, "custom_id": f"r{i}"}) + "\n" for i in range(n)).encode()


def test_uploads_past_the_quota_are_refused_and_not_stored(api: Api) -> None:
    alice = api.headers("alice")
    storage = api.client.app.state.jobs.storage  # type: ignore[attr-defined]
    first = prompts(25)  # 26 bytes a line: 650 bytes
    assert api.client.put(f"{UPLOADS}/a.jsonl", content=first, headers=alice).status_code == 201
    again = api.client.put(f"{UPLOADS}/a.jsonl", content=first, headers=alice)
    assert again.status_code == 201  # the same file is the same object: no more room taken
    stored = storage.list("prompts/user-uploads/")
    over = api.client.put(f"{UPLOADS}/b.jsonl", content=prompts(40), headers=alice)
    assert over.status_code == 429, over.text
    error = over.json()["error"]
    assert error["type"] == "quota_exceeded" and "1500-byte quota" in error["message"]
    assert "Retry-After" not in over.headers  # waiting does not free room
    files = api.client.post(
        "/v1/files", files={"file": ("b.jsonl", batch_file(8))}, data={"purpose": "batch"},
        headers=alice,
    )  # fmt: skip
    assert (
        files.status_code == 429 and files.json()["error"]["code"] == "insufficient_quota"
    )  # OpenAI's word
    assert storage.list("prompts/user-uploads/") == stored  # neither was kept
    # Bob's room is his own.
    assert (
        api.client.put(
            f"{UPLOADS}/b.jsonl", content=prompts(40), headers=api.headers("bob")
        ).status_code
        == 201
    )


def test_a_deleted_file_frees_its_room(api: Api) -> None:
    bob = api.headers("bob")  # holds 1,040 bytes from the test above, or none alone
    for upload in api.client.get(UPLOADS, headers=bob).json()["uploads"]:
        assert api.client.delete(f"{UPLOADS}/{upload['name']}", headers=bob).status_code == 204
    assert api.client.get(UPLOADS, headers=bob).json()["used_bytes"] == 0
    upload = lambda: api.client.post(  # noqa: E731
        "/v1/files",
        files={"file": ("b.jsonl", batch_file(7))},
        data={"purpose": "batch"},
        headers=bob,
    )
    made = upload()
    assert made.status_code == 200, made.text
    assert upload().status_code == 429
    assert api.client.delete(f"/v1/files/{made.json()['id']}", headers=bob).status_code == 200
    assert upload().status_code == 200


def test_uploads_are_listed_and_deleted_by_name(api: Api) -> None:
    """What the quota's message asks ("delete uploads you no longer need") can be done: the
    list says what takes the room, a deletion frees it; never someone else's file, never one
    a job still has to read."""
    alice, bob = api.headers("alice"), api.headers("bob")
    data = prompts(3)
    made = api.client.put(f"{UPLOADS}/c.jsonl", content=data, headers=alice)
    assert made.status_code == 201, made.text
    name, key = made.json()["name"], made.json()["key"]
    listed = api.client.get(UPLOADS, headers=alice).json()
    assert {"name": name, "key": key, "bytes": len(data)} in listed["uploads"]
    assert listed["quota_bytes"] == QUOTA
    assert listed["used_bytes"] == sum(u["bytes"] for u in listed["uploads"])
    assert name not in [u["name"] for u in api.client.get(UPLOADS, headers=bob).json()["uploads"]]
    assert api.client.delete(f"{UPLOADS}/{name}", headers=bob).status_code == 404

    job = api.client.post("/api/v1/generate/batch", json={"prompt_file": key}, headers=alice)
    assert job.status_code == 202, job.text
    busy = api.client.delete(f"{UPLOADS}/{name}", headers=alice)
    assert busy.status_code == 409, busy.text
    assert job.json()["id"] in busy.json()["error"]["message"]
    cancelled = api.client.post(f"/api/v1/generate/status/{job.json()['id']}/cancel", headers=alice)
    assert cancelled.status_code == 200, cancelled.text

    assert api.client.delete(f"{UPLOADS}/{name}", headers=alice).status_code == 204
    after = api.client.get(UPLOADS, headers=alice).json()
    assert name not in [u["name"] for u in after["uploads"]]
    assert after["used_bytes"] == listed["used_bytes"] - len(data)
    again = api.client.delete(f"{UPLOADS}/{name}", headers=alice)
    assert again.status_code == 404 and "no upload" in again.json()["error"]["message"]


def test_an_openai_file_is_not_an_upload_here(api: Api) -> None:
    """/v1/files objects share the prefix (and the quota) but are deleted under /v1/files,
    with their metadata."""
    admin = api.headers("admin")
    made = api.client.post(
        "/v1/files", files={"file": ("b.jsonl", batch_file(2))}, data={"purpose": "batch"},
        headers=admin,
    )  # fmt: skip
    assert made.status_code == 200, made.text
    listed = api.client.get(UPLOADS, headers=admin).json()
    assert listed["uploads"] == [] and listed["used_bytes"] > 0
    stored = f"{made.json()['id']}.jsonl"
    assert api.client.delete(f"{UPLOADS}/{stored}", headers=admin).status_code == 404


def test_the_quota_counts_what_a_batch_file_stores(api: Api) -> None:
    # Its description beside it too: the last file admitted took Carol past her quota.
    api.client.app.state.auth.create_user("carol", PASSWORD)  # type: ignore[attr-defined]
    carol = api.headers("carol")
    for i in range(20):
        answer = api.client.post(
            "/v1/files",
            files={"file": (f"f{i}.jsonl", batch_file(1))},
            data={"purpose": "batch"},
            headers=carol,
        )
        if answer.status_code == 429:
            break
        assert answer.status_code == 200, answer.text
    else:
        raise AssertionError("the quota never refused a file")
    assert 0 < api.client.get(UPLOADS, headers=carol).json()["used_bytes"] <= QUOTA
