"""OpenAI's Files and Batch APIs on a real app (TestClient, SQLite), with an in-process worker
and the jobs tier's fake models: uploads checked line by line, batches as jobs, the output
and error files in OpenAI's shape, and other users' ids answering 404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import Api, make_settings, start_api
from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import run_worker
from textnlp.services.batch_requests import MAX_REQUEST_BYTES

FILES = "/v1/files"
BATCHES = "/v1/batches"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home = tmp_path_factory.mktemp("openai-batches")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    settings = make_settings(
        home,
        models_file=models,
        generation={"response_cache": False, "max_count": 50},
        queue={"chunk_size": 2},
        api={"max_body_bytes": 4 * MAX_REQUEST_BYTES},
    )
    yield from start_api(settings)


def line(custom_id: str, *, url: str = CHAT, **body: Any) -> dict[str, Any]:
    if url == CHAT:
        body = {"messages": [{"role": "user", "content": f"Say {custom_id}"}], **body}
    else:
        body = {"prompt": f"Say {custom_id}", **body}
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": "fake-fast", **body},
    }


def jsonl(*lines: dict[str, Any] | str) -> bytes:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()


def upload(api: Api, user: str, data: bytes, name: str = "batch.jsonl") -> Any:
    return api.client.post(
        FILES,
        files={"file": (name, data, "application/jsonl")},
        data={"purpose": "batch"},
        headers=api.headers(user),
    )


def create(api: Api, user: str, file_id: str, endpoint: str = CHAT, **extra: Any) -> Any:
    body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", **extra}
    return api.client.post(BATCHES, json=body, headers=api.headers(user))


def content_lines(api: Api, user: str, file_id: str) -> list[dict[str, Any]]:
    answer = api.client.get(f"{FILES}/{file_id}/content", headers=api.headers(user))
    assert answer.status_code == 200, answer.text
    return [json.loads(x) for x in answer.text.splitlines()]


def test_upload_create_run_and_download(api: Api) -> None:
    data = jsonl(
        line("a", max_tokens=5, temperature=0),
        "",
        line(
            "b",
            messages=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Again"},
            ],
            max_completion_tokens=7,
            stop="x",
            seed=3,
        ),
        line("c"),
    )
    uploaded = upload(api, "alice", data)
    assert uploaded.status_code == 200, uploaded.text
    file = uploaded.json()
    assert file["object"] == "file" and file["purpose"] == "batch"
    assert file["bytes"] == len(data) and file["filename"] == "batch.jsonl"
    assert file["id"].startswith("file-") and isinstance(file["created_at"], int)
    alice = api.headers("alice")
    assert api.client.get(f"{FILES}/{file['id']}", headers=alice).json() == file
    assert api.client.get(f"{FILES}/{file['id']}/content", headers=alice).content == data
    assert file["id"] in [f["id"] for f in api.client.get(FILES, headers=alice).json()["data"]]

    created = create(api, "alice", file["id"], metadata={"project": "x"})
    assert created.status_code == 200, created.text
    batch = created.json()
    assert batch["object"] == "batch" and batch["id"].startswith("batch_")
    assert batch["status"] == "validating" and batch["endpoint"] == CHAT
    assert batch["input_file_id"] == file["id"] and batch["metadata"] == {"project": "x"}
    assert batch["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
    assert batch["output_file_id"] is None and batch["completion_window"] == "24h"
    assert "x-ratelimit-limit-requests" in created.headers
    listed = api.client.get(BATCHES, headers=alice).json()
    assert listed["object"] == "list" and batch["id"] in [b["id"] for b in listed["data"]]

    run_worker(api.settings)
    done = api.client.get(f"{BATCHES}/{batch['id']}", headers=alice).json()
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert done["completed_at"] and done["in_progress_at"] and done["error_file_id"] is None
    out = content_lines(api, "alice", done["output_file_id"])
    assert [x["custom_id"] for x in out] == ["a", "b", "c"]
    for x in out:
        assert x["error"] is None and x["id"].startswith("batch_req_")
        assert x["response"]["status_code"] == 200
        body = x["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == "fake-fast"
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["choices"][0]["message"]["content"].startswith("text ")
        assert body["usage"]["total_tokens"] >= 1
    # The same bytes every time (built once, from the stored records).
    assert content_lines(api, "alice", done["output_file_id"]) == out
    meta = api.client.get(f"{FILES}/{done['output_file_id']}", headers=alice).json()
    assert meta["purpose"] == "batch_output" and meta["bytes"] > 0
    # Every line was sent with its own parameters (the fake's answer hashes the request).
    texts = {x["custom_id"]: x["response"]["body"]["choices"][0]["message"]["content"] for x in out}
    assert len(set(texts.values())) == 3
    # A batch is a TextNLP job too.
    job = api.client.get(f"/api/v1/generate/status/{batch['id'][6:]}", headers=alice).json()
    assert job["state"] == "succeeded" and job["progress"]["done"] == 3


def test_completions_endpoint(api: Api) -> None:
    url = "/v1/completions"
    data = jsonl(line("p1", url=url, max_tokens=4), line("p2", url=url, prompt=["Only one"]))
    file = upload(api, "alice", data).json()
    wrong = create(api, "alice", file["id"], endpoint=CHAT)
    assert wrong.status_code == 400 and "/v1/completions" in wrong.json()["error"]["message"]
    batch = create(api, "alice", file["id"], endpoint=url).json()
    run_worker(api.settings)
    done = api.client.get(f"{BATCHES}/{batch['id']}", headers=api.headers("alice")).json()
    out = content_lines(api, "alice", done["output_file_id"])
    assert [x["custom_id"] for x in out] == ["p1", "p2"]
    assert all(x["response"]["body"]["object"] == "text_completion" for x in out)
    assert all(x["response"]["body"]["choices"][0]["text"] for x in out)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"custom_id": "a", "method": "POST"\n', "line 1"),
        (jsonl(line("a"), "{not json"), "line 2"),
        (jsonl(line("a"), line("b"), line("a")), "line 3: duplicate custom_id 'a'"),
        (jsonl(line("a"), line("b", model="fake-slow")), "line 2: model 'fake-slow' differs"),
        (jsonl(line("a"), line("b", url="/v1/completions")), "line 2: url"),
        (jsonl(line("a", url="/v1/embeddings")), "line 1: url '/v1/embeddings' is not supported"),
        (jsonl(line("a"), line("b", n=2)), "line 2: body.n"),
        (jsonl(line("a", stream=True)), "line 1: body.stream"),
        (jsonl(line("a", logit_bias={"1": 2})), "line 1: body.logit_bias"),
        (jsonl(line("a", max_tokens=0)), "line 1: body.max_tokens"),
        (jsonl(line("a", messages=[{"role": "assistant", "content": "x"}])), "line 1"),
        (jsonl(line("a", response_format={"type": "json_object"})), "line 1: body.response"),
        (jsonl({"prompt": "a plain prompt"}), "line 1"),
        (
            jsonl(line("a"), line("b", messages=[{"role": "user", "content": "x" * 2**20}])),
            "line 2",
        ),
        (jsonl(*(line(str(i)) for i in range(51))), "line 51: a batch takes at most 50"),
        (b"\n\n", "no requests"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_files_answer_400_naming_the_line(api: Api, data: bytes, message: str) -> None:
    answer = upload(api, "alice", data)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"


def test_bad_requests(api: Api) -> None:
    alice = api.headers("alice")
    wrong_purpose = api.client.post(
        FILES, files={"file": ("b.jsonl", jsonl(line("a")))}, data={"purpose": "fine-tune"},
        headers=alice,
    )  # fmt: skip
    assert wrong_purpose.status_code == 400 and "purpose" in wrong_purpose.text
    file = upload(api, "alice", jsonl(line("a", max_tokens=4096))).json()
    too_long = create(api, "alice", file["id"])
    assert too_long.status_code == 400 and "line 1: max_tokens 4096" in too_long.text
    file = upload(api, "alice", jsonl(line("a"))).json()
    embeddings = create(api, "alice", file["id"], endpoint="/v1/embeddings")
    assert embeddings.status_code == 400 and "/v1/completions" in embeddings.text
    assert create(api, "alice", file["id"], completion_window="1h").status_code == 400
    assert create(api, "alice", file["id"], surprise=1).status_code == 400
    many = {str(i): "v" for i in range(17)}
    assert create(api, "alice", file["id"], metadata=many).status_code == 400
    unknown_model = jsonl({**line("a"), "body": {**line("a")["body"], "model": "nope"}})
    nope = create(api, "alice", upload(api, "alice", unknown_model).json()["id"])
    assert nope.status_code == 404 and nope.json()["error"]["code"] == "model_not_found"
    for path in (f"{FILES}/file-nope", f"{BATCHES}/batch_nope", f"{FILES}/{'x' * 500}"):
        assert api.client.get(path, headers=alice).status_code == 404
    assert api.client.get(BATCHES).status_code == 401


def test_other_users_ids_are_404(api: Api) -> None:
    file = upload(api, "alice", jsonl(line("a", max_tokens=3))).json()
    batch = create(api, "alice", file["id"]).json()
    run_worker(api.settings)
    done = api.client.get(f"{BATCHES}/{batch['id']}", headers=api.headers("alice")).json()
    for user in ("bob", "admin"):
        headers = api.headers(user)
        for path in (
            f"{FILES}/{file['id']}",
            f"{FILES}/{file['id']}/content",
            f"{FILES}/{done['output_file_id']}",
            f"{FILES}/{done['output_file_id']}/content",
            f"{BATCHES}/{batch['id']}",
        ):
            assert api.client.get(path, headers=headers).status_code == 404, (user, path)
        assert (
            api.client.post(f"{BATCHES}/{batch['id']}/cancel", headers=headers).status_code == 404
        )
        assert api.client.delete(f"{FILES}/{file['id']}", headers=headers).status_code == 404
        assert create(api, user, file["id"]).status_code == 404
        assert batch["id"] not in [
            b["id"] for b in api.client.get(BATCHES, headers=headers).json()["data"]
        ]
        assert file["id"] not in [
            f["id"] for f in api.client.get(FILES, headers=headers).json()["data"]
        ]
    # A native job is no batch.
    alice = api.headers("alice")
    job = api.client.post(
        "/api/v1/generate/batch", json={"prompts": ["x"], "model": "fake-fast"}, headers=alice
    ).json()
    assert api.client.get(f"{BATCHES}/batch_{job['id']}", headers=alice).status_code == 404


def test_cancel_and_delete(api: Api) -> None:
    alice = api.headers("alice")
    file = upload(api, "alice", jsonl(line("a"), line("b"))).json()
    batch = create(api, "alice", file["id"]).json()
    cancelled = api.client.post(f"{BATCHES}/{batch['id']}/cancel", headers=alice)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["cancelled_at"] and body["output_file_id"] is None
    again = api.client.post(f"{BATCHES}/{batch['id']}/cancel", headers=alice)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    run_worker(api.settings)  # the cancelled job is not run
    after = api.client.get(f"{BATCHES}/{batch['id']}", headers=alice).json()
    assert after["request_counts"]["completed"] == 0
    deleted = api.client.delete(f"{FILES}/{file['id']}", headers=alice)
    assert deleted.json() == {"id": file["id"], "object": "file", "deleted": True}
    assert api.client.get(f"{FILES}/{file['id']}", headers=alice).status_code == 404
    done_file = upload(api, "alice", jsonl(line("z", max_tokens=2))).json()
    done = create(api, "alice", done_file["id"]).json()
    run_worker(api.settings)
    finished = api.client.post(f"{BATCHES}/{done['id']}/cancel", headers=alice)
    assert finished.status_code == 409
    output = api.client.get(f"{BATCHES}/{done['id']}", headers=alice).json()["output_file_id"]
    assert api.client.delete(f"{FILES}/{output}", headers=alice).status_code == 409


def test_failed_batch_lists_its_unanswered_lines(api: Api) -> None:
    data = jsonl(*(line(f"r{i}", model="poison") for i in range(3)))
    batch = create(api, "alice", upload(api, "alice", data).json()["id"]).json()
    for _ in range(3):  # every attempt fails: the job fails after its last one
        run_worker(api.settings)
    failed = api.client.get(f"{BATCHES}/{batch['id']}", headers=api.headers("alice")).json()
    assert failed["status"] == "failed", failed
    assert failed["errors"]["data"][0]["code"] == "batch_failed"
    assert failed["request_counts"] == {"total": 3, "completed": 0, "failed": 3}
    assert failed["output_file_id"] is None
    errors = content_lines(api, "alice", failed["error_file_id"])
    assert [x["custom_id"] for x in errors] == ["r0", "r1", "r2"]
    assert all(x["response"] is None and x["error"]["code"] == "batch_failed" for x in errors)


def test_list_pagination(api: Api) -> None:
    ids = []
    for _ in range(3):
        file = upload(api, "bob", jsonl(line("a"))).json()
        ids.append(create(api, "bob", file["id"]).json()["id"])
    bob = api.headers("bob")
    first = api.client.get(BATCHES, params={"limit": 2}, headers=bob).json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = api.client.get(BATCHES, params={"after": first["last_id"]}, headers=bob).json()
    assert ids[0] in [b["id"] for b in rest["data"]]
