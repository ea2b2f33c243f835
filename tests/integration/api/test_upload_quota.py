"""A user's uploads (prompt files and OpenAI batch files together) are bounded by
``api.max_upload_bytes_per_user``: past it an upload answers 429 ``quota_exceeded`` and is not
stored; the same file again takes no more room, and a deleted file frees its room."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.api import Api, make_settings, start_api

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
    storage = api.client.app.state.jobs.storage  # type: ignore[attr-defined]
    bob_id = api.client.app.state.auth.user("bob").id  # type: ignore[attr-defined]
    for key in storage.list(f"prompts/user-uploads/{bob_id}/"):
        storage.delete(key)
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
