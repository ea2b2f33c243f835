"""OpenAI's Files and Batch APIs on a real app (TestClient, SQLite), with an in-process worker
and the jobs tier's fake models: uploads checked line by line, batches as jobs, the output
and error files in OpenAI's shape, a line the backend refuses in the error file of a batch
that completes, expired batches, the files route's own body bound, and other users' ids
answering 404."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api, make_settings, start_api
from tests.support.fake_backend import FakeBackend
from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import run_worker
from textnlp.backends.spec import ModelSpec
from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.domain import Completion, GenerationRequest
from textnlp.errors import InvalidRequest
from textnlp.services.batch_requests import MAX_REQUEST_BYTES
from textnlp.worker import Worker, WorkerOptions

FILES = "/v1/files"
BATCHES = "/v1/batches"
CHAT = "/v1/chat/completions"
#: Batch files up to this size (the fixture's; every other body stays at the 1 MB default).
MAX_FILE_BYTES = 3 * MAX_REQUEST_BYTES
REFUSED = "the backend refuses this request"


class PickyBackend(FakeBackend):
    """Refuses (400) the requests that ask it to; stops its worker (as SIGTERM does) when a
    request says so, after answering it."""

    name = "picky"
    #: The running worker's ``request_stop`` (``run_stoppable_worker``).
    stop_worker: Callable[[], None] | None = None
    #: What a request saying "cancel the batch" calls (a user's cancel mid-run).
    cancel_batch: Callable[[], None] | None = None

    def __init__(self, spec: ModelSpec | None = None) -> None:
        super().__init__(spec)

    async def complete(self, request: GenerationRequest) -> Completion:
        text = request.as_text()
        if "refuse me" in text:
            raise InvalidRequest(REFUSED, backend=self.name, model=self.spec.id)
        if "stop the worker" in text and PickyBackend.stop_worker is not None:
            PickyBackend.stop_worker()
        if "cancel the batch" in text and PickyBackend.cancel_batch is not None:
            PickyBackend.cancel_batch()
        return await super().complete(request)


def run_stoppable_worker(settings: Settings) -> None:
    """``run_worker``, whose worker a request can stop: it stores its chunk and hands the job
    back, which stays running with the records stored so far."""

    async def go() -> None:
        async with Platform(settings) as platform:
            worker = Worker(platform, WorkerOptions(once=True, wait_s=0.2))
            PickyBackend.stop_worker = worker.request_stop
            try:
                await worker.run()
            finally:
                PickyBackend.stop_worker = None

    asyncio.run(go())


PICKY_MODELS = f"""{MODELS_YAML}
  - id: picky
    backend: picky
    context_length: 4096
"""


def app_settings(home: Path, **overrides: Any) -> Settings:
    from textnlp.backends.registry import register_backend

    register()
    register_backend("picky", f"{__name__}:PickyBackend")
    models = home / "models.yaml"
    models.write_text(PICKY_MODELS)
    return make_settings(
        home,
        models_file=models,
        generation={"response_cache": False, "max_count": 50, "concurrency": 1},
        **overrides,
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("openai-batches")
    settings = app_settings(home, queue={"chunk_size": 2}, api={"max_file_bytes": MAX_FILE_BYTES})
    yield from start_api(settings)


@pytest.fixture(scope="module")
def short_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Batches of a one-second completion window; a worker's hold on a job lapses in 2 s."""
    home = tmp_path_factory.mktemp("openai-batches-expiry")
    settings = app_settings(
        home,
        queue={"chunk_size": 2, "visibility_timeout_s": 2, "heartbeat_s": 0.5},
        api={"batch_window_s": 1},
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
    assert batch["expires_at"] == batch["created_at"] + 24 * 3600
    assert "x-ratelimit-limit-requests" in created.headers
    listed = api.client.get(BATCHES, headers=alice).json()
    assert listed["object"] == "list" and batch["id"] in [b["id"] for b in listed["data"]]

    run_worker(api.settings)
    done = api.client.get(f"{BATCHES}/{batch['id']}", headers=alice).json()
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert done["completed_at"] and done["in_progress_at"] and done["error_file_id"] is None
    assert done["expires_at"] == batch["expires_at"] and done["expired_at"] is None
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
    # Listed as OpenAI lists them (GET /v1/files showed the uploads only), by purpose too.
    assert meta in api.client.get(FILES, headers=alice).json()["data"]
    outputs = api.client.get(FILES, params={"purpose": "batch_output"}, headers=alice).json()
    assert [f["id"] for f in outputs["data"]] == [done["output_file_id"]]
    uploads = api.client.get(FILES, params={"purpose": "batch"}, headers=alice).json()["data"]
    assert {f["purpose"] for f in uploads} == {"batch"}
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


USER = {"role": "user", "content": "Say hi"}


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "system", "content": "Greet."}]},  # a system message alone
        {"messages": [USER], "presence_penalty": 0, "logprobs": False, "store": False},
        {"messages": [USER], "stream_options": None, "surprise": 1},  # unknown: ignored
        {"messages": [USER, {"role": "assistant", "content": "Hi", "refusal": None}]},
        {"messages": [USER], "temperature": "0.5"},  # strict types
        {"messages": [USER], "presence_penalty": 0.5},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [USER], "max_completion_tokens": 0},
    ],
)
def test_a_batch_line_is_refused_exactly_when_the_same_request_online_is(
    api: Api, body: dict[str, Any]
) -> None:
    """One contract for the online route and a batch file's lines: they disagreed both ways
    (a system message alone, ``presence_penalty: 0``... refused in a file; ``"0.5"`` taken)."""
    request = {"model": "fake-fast", "max_tokens": 2, **body}
    online = api.client.post(CHAT, json=request, headers=api.headers("alice"))
    assert online.status_code in {200, 400}, online.text
    line = {"custom_id": "a", "method": "POST", "url": CHAT, "body": request}
    in_a_file = upload(api, "alice", jsonl(line))
    assert in_a_file.status_code == online.status_code, (online.text, in_a_file.text)


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
        (jsonl(line("a", messages=[{"role": "tool", "content": "x"}])), "line 1: body.messages.0"),
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


def test_an_upload_is_one_file_with_a_text_name(api: Api) -> None:
    alice = api.headers("alice")
    before = api.client.get(FILES, headers=alice).json()["data"]
    two = [("file", ("a.jsonl", jsonl(line("a")))), ("file", ("b.jsonl", jsonl(line("b"))))]
    both = api.client.post(FILES, files=two, data={"purpose": "batch"}, headers=alice)
    assert both.status_code == 400 and "one file per upload, not 2" in both.text, both.text
    body = (  # by hand: httpx would escape the NUL in the name as %00
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.jsonl"\r\n\r\n'
        + jsonl(line("a")) + b"\r\n--b--\r\n"
    )  # fmt: skip
    multipart = {**alice, "Content-Type": "multipart/form-data; boundary=b"}
    nul = api.client.post(FILES, content=body, headers=multipart)
    assert nul.status_code == 400 and "file name: text holds a NUL" in nul.text, nul.text
    assert api.client.get(FILES, headers=alice).json()["data"] == before  # nothing stored


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
            refused = api.client.get(path, headers=headers)
            assert refused.status_code == 404, (user, path)
            kind = "batch" if path.startswith(BATCHES) else "file"  # an output file is a file
            assert refused.json()["error"]["message"].startswith(f"no {kind} "), refused.text
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
    # the input of a batch still to run is kept: the batch reads it at every attempt
    kept = api.client.delete(f"{FILES}/{file['id']}", headers=alice)
    assert kept.status_code == 409 and batch["id"] in kept.json()["error"]["message"]
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
    assert "has ended (completed)" in finished.json()["error"]["message"]  # a batch's words
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


def test_a_file_deleted_while_the_files_are_listed_is_left_out(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The listing 404'd naming the deleted file.
    kept = upload(api, "admin", jsonl(line("k"))).json()
    gone = upload(api, "admin", jsonl(line("g"))).json()
    storage = api.client.app.state.jobs.storage  # type: ignore[attr-defined]
    listed = storage.list

    def list_then_delete(prefix: str) -> list[str]:
        keys: list[str] = listed(prefix)
        for key in keys:
            if gone["id"] in key:
                storage.delete(key)  # its description and its lines: as a DELETE would
        return keys

    monkeypatch.setattr(storage, "list", list_then_delete)
    answer = api.client.get(FILES, headers=api.headers("admin"))
    assert answer.status_code == 200, answer.text
    ids = [file["id"] for file in answer.json()["data"]]
    assert kept["id"] in ids and gone["id"] not in ids


def get_batch(api: Api, user: str, batch_id: str) -> dict[str, Any]:
    answer = api.client.get(f"{BATCHES}/{batch_id}", headers=api.headers(user))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def picky(custom_id: str, content: str | None = None) -> dict[str, Any]:
    messages = [{"role": "user", "content": content or f"Say {custom_id}"}]
    return line(custom_id, model="picky", messages=messages, max_tokens=5)


def test_a_batch_cancelled_mid_run_is_cancelled_once_its_worker_stops(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not "cancelling" until the worker's heartbeat went stale (the visibility timeout, 30 s).
    data = jsonl(picky("a"), picky("b", "Now cancel the batch"), picky("c"), picky("d"))
    batch = create(api, "alice", upload(api, "alice", data).json()["id"]).json()

    def cancel() -> None:
        url = f"{BATCHES}/{batch['id']}/cancel"
        assert api.client.post(url, headers=api.headers("alice")).status_code == 200

    monkeypatch.setattr(PickyBackend, "cancel_batch", cancel)
    run_worker(api.settings)
    ended = get_batch(api, "alice", batch["id"])
    assert ended["status"] == "cancelled", ended
    answered = content_lines(api, "alice", ended["output_file_id"])
    assert [x["custom_id"] for x in answered] == ["a", "b"]  # its chunk, kept


def test_a_refused_line_fails_alone(api: Api) -> None:
    data = jsonl(picky("a"), picky("b", "Please refuse me"), picky("c"), picky("d"))
    batch = create(api, "alice", upload(api, "alice", data).json()["id"]).json()
    run_worker(api.settings)
    done = get_batch(api, "alice", batch["id"])
    assert done["status"] == "completed", done
    assert done["errors"] is None and done["completed_at"]
    assert done["request_counts"] == {"total": 4, "completed": 3, "failed": 1}
    out = content_lines(api, "alice", done["output_file_id"])
    errors = content_lines(api, "alice", done["error_file_id"])
    assert [x["custom_id"] for x in out] == ["a", "c", "d"]
    assert all(x["response"]["status_code"] == 200 and x["error"] is None for x in out)
    # The refused line as OpenAI writes it: the HTTP answer it got, no top-level error.
    [refused] = errors
    assert refused["custom_id"] == "b" and refused["error"] is None
    assert refused["id"].startswith("batch_req_")
    assert refused["response"]["status_code"] == 400
    assert refused["response"]["request_id"].startswith("req_")
    assert refused["response"]["body"] == {
        "error": {
            "message": REFUSED,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request",
        }
    }
    # Every line once, in one file or the other.
    ids = sorted(x["custom_id"] for x in out + errors)
    assert ids == ["a", "b", "c", "d"]
    assert len({x["id"] for x in out + errors}) == 4
    # The job succeeded too, its failed record counted.
    job = api.client.get(f"/api/v1/generate/status/{batch['id'][6:]}", headers=api.headers("alice"))
    assert job.json()["state"] == "succeeded"


def test_a_batch_whose_every_line_is_refused_completes(api: Api) -> None:
    data = jsonl(*(picky(f"r{i}", f"refuse me {i}") for i in range(3)))
    batch = create(api, "alice", upload(api, "alice", data).json()["id"]).json()
    run_worker(api.settings)
    done = get_batch(api, "alice", batch["id"])
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 3, "completed": 0, "failed": 3}
    assert done["output_file_id"] is None
    errors = content_lines(api, "alice", done["error_file_id"])
    assert [x["custom_id"] for x in errors] == ["r0", "r1", "r2"]
    assert {x["response"]["body"]["error"]["message"] for x in errors} == {REFUSED}


def wait_past(moment: int) -> None:
    """Until the clock has passed ``moment`` (unix seconds): a window's end, not an assert."""
    while time.time() < moment + 0.05:
        time.sleep(0.05)


def settled(api: Api, batch_id: str) -> dict[str, Any]:
    """The batch once its (stopped) worker can no longer store a chunk."""
    for _ in range(600):
        batch = get_batch(api, "alice", batch_id)
        if batch["status"] != "finalizing":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} is still finalizing")


def test_a_batch_no_worker_took_expires(short_api: Api) -> None:
    api = short_api
    data = jsonl(picky("a"), picky("b"))
    batch = create(api, "alice", upload(api, "alice", data).json()["id"]).json()
    assert batch["expires_at"] == batch["created_at"] + 1
    wait_past(batch["expires_at"])
    expired = get_batch(api, "alice", batch["id"])
    assert expired["status"] == "expired", expired
    assert expired["expired_at"] >= expired["expires_at"]
    assert expired["completed_at"] is None and expired["cancelled_at"] is None
    assert expired["request_counts"] == {"total": 2, "completed": 0, "failed": 2}
    assert expired["output_file_id"] is None
    errors = content_lines(api, "alice", expired["error_file_id"])
    assert [x["custom_id"] for x in errors] == ["a", "b"]
    for x in errors:
        assert x["response"] is None and x["error"]["code"] == "batch_expired"
        assert "completion window expired" in x["error"]["message"]
    # Its job was stopped: a worker runs nothing of it, and it stays expired.
    run_worker(api.settings)
    again = get_batch(api, "alice", batch["id"])
    assert again["status"] == "expired" and again["request_counts"]["completed"] == 0
    cancel = api.client.post(f"{BATCHES}/{batch['id']}/cancel", headers=api.headers("alice"))
    assert cancel.status_code == 409
    listed = api.client.get(BATCHES, headers=api.headers("alice")).json()["data"]
    assert {b["id"]: b["status"] for b in listed}[batch["id"]] == "expired"


def test_an_expired_batch_keeps_the_answers_it_had(short_api: Api) -> None:
    api = short_api
    # The worker is stopped after line b: it stores a and b (a chunk) and hands the job back;
    # the window ends before another worker takes it.
    data = jsonl(picky("a"), picky("b", "Now stop the worker"), picky("c"), picky("d"))
    batch = create(api, "alice", upload(api, "alice", data).json()["id"]).json()
    run_stoppable_worker(api.settings)
    assert get_batch(api, "alice", batch["id"])["request_counts"]["completed"] == 2
    wait_past(batch["expires_at"])
    expired = settled(api, batch["id"])
    assert expired["status"] == "expired", expired
    assert expired["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    out = content_lines(api, "alice", expired["output_file_id"])
    errors = content_lines(api, "alice", expired["error_file_id"])
    assert [x["custom_id"] for x in out] == ["a", "b"]
    assert all(x["response"]["status_code"] == 200 for x in out)
    assert [x["custom_id"] for x in errors] == ["c", "d"]
    assert all(x["error"]["code"] == "batch_expired" for x in errors)
    run_worker(api.settings)  # the message comes back to a worker: the job stays stopped
    assert get_batch(api, "alice", batch["id"])["request_counts"]["completed"] == 2


def big_line(custom_id: str, size: int) -> dict[str, Any]:
    return line(custom_id, messages=[{"role": "user", "content": "x" * size}], max_tokens=3)


def test_files_take_more_than_other_bodies(api: Api) -> None:
    alice = api.headers("alice")
    near = MAX_REQUEST_BYTES - 1000
    data = jsonl(big_line("a", near), big_line("b", near))
    assert api.settings.api.max_body_bytes < len(data) < MAX_FILE_BYTES
    uploaded = upload(api, "alice", data)
    assert uploaded.status_code == 200, uploaded.text[:500]
    file = uploaded.json()
    assert file["bytes"] == len(data)
    assert api.client.get(f"{FILES}/{file['id']}/content", headers=alice).content == data
    created = create(api, "alice", file["id"])
    assert created.status_code == 200, created.text
    batch = created.json()
    run_worker(api.settings)
    done = get_batch(api, "alice", batch["id"])
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    # Any other route keeps the 1 MB bound.
    body = {"model": "fake-fast", "messages": [{"role": "user", "content": "x" * len(data)}]}
    chat = api.client.post(CHAT, json=body, headers=alice)
    assert chat.status_code == 413
    assert chat.json()["error"]["code"] == "payload_too_large"
    native = api.client.post(
        "/api/v1/generate/text", json={"prompt": "x" * len(data)}, headers=alice
    )
    assert native.status_code == 413 and native.json()["error"]["type"] == "payload_too_large"


def test_a_file_over_the_bound_is_refused(api: Api) -> None:
    near = MAX_REQUEST_BYTES - 1000
    data = jsonl(*(big_line(str(i), near) for i in range(4)))
    assert len(data) > MAX_FILE_BYTES
    refused = upload(api, "alice", data)
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "payload_too_large"
    assert str(MAX_FILE_BYTES) in error["message"] and "param" in error
