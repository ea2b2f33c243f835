"""``textnlp serve`` as a process, driven through ``textnlp.client`` as a user would."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import Served, ServeUser, serve
from textnlp.client import ApiError, AsyncTextNLPClient, TextNLPClient

pytestmark = pytest.mark.slow
PASSWORD = "e2e-password-123"
CAROL = ServeUser("carol", PASSWORD, admin=True)


def textnlp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "textnlp.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def served(_isolated_home: Path, tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, home=_isolated_home, users=[CAROL]) as api:
        yield api


@pytest.fixture
def server(served: Served) -> str:
    return served.url


def test_login_generate_stream_and_logout(server: str, served: Served) -> None:
    with TextNLPClient(server) as client:
        assert client.health().status == "ok"
        with pytest.raises(ApiError) as refused:
            client.list_models()
        assert refused.value.status == 401
        client.login("carol", PASSWORD)
        assert "smollm2-135m" in [m.id for m in client.list_models()]
        completion = client.generate(prompt="Say hi.", max_tokens=6, temperature=0.0)
        assert completion.choices[0].text and completion.usage.completion_tokens >= 1
        assert client.generate(prompt="Say hi.", max_tokens=6, temperature=0.0).cached
        pieces = list(client.stream(prompt="Count to three.", max_tokens=6))
        assert pieces and "".join(pieces)
        events = list(client.stream_events(prompt="Count to three.", max_tokens=6))
        assert events[-1]["type"] == "done" and events[-1]["usage"]["completion_tokens"] >= 1
        assert [e for e in events if e["type"] == "token" and e["text"]]
        with pytest.raises(ApiError) as unknown:
            list(client.stream_events(prompt="x", model="no-such-model"))
        assert unknown.value.status == 404 and unknown.value.type == "model_not_found"
        client.refresh()  # rotation through the client
        assert client.clear_cache() >= 1
        assert "textnlp_http_requests_total" in client.metrics()
        key = client.create_api_key("e2e").key
        client.logout()
        with pytest.raises(ApiError):
            client.list_models()
    with TextNLPClient(server, api_key=key) as service_account:
        assert service_account.get_model("smollm2-135m").available
    with TextNLPClient(server, api_key="not-a-key") as stranger, pytest.raises(ApiError) as refused:
        list(stranger.stream_events(prompt="x"))  # the WebSocket's handshake, refused
    assert refused.value.status == 401 and refused.value.type == "authentication_error"
    log = served.log_text()
    assert '"request_id"' in log and PASSWORD not in log


async def test_async_client_streams(server: str) -> None:
    async with AsyncTextNLPClient(server) as client:
        await client.login("carol", PASSWORD)
        pieces = [piece async for piece in client.stream(prompt="Hello", max_tokens=5)]
        assert pieces
        events = [event async for event in client.stream_events(prompt="Hello", max_tokens=5)]
        assert events[-1]["type"] == "done" and events[-1]["finish_reason"] in {"stop", "length"}
        quality = await client.quality(["A short review."], language=False)
        assert quality.count == 1


async def test_async_client_runs_a_batch_job(server: str) -> None:
    """The async client's job calls against the real server, with a real worker process."""
    async with AsyncTextNLPClient(server) as client:
        await client.login("carol", PASSWORD)
        key = await client.upload_prompts("prompts.jsonl", b'{"prompt": "Say hi."}\n')
        body = {"prompt_file": key, "params": {"max_tokens": 4}}
        job = await client.submit_batch(body, idempotency_key="async-e2e")
        again = await client.submit_batch(body, idempotency_key="async-e2e")
        assert again["id"] == job["id"] and job["state"] == "queued"
        assert job["id"] in [j["id"] for j in await client.list_jobs()]
        spare = await client.submit_batch({"prompts": ["Say bye."]})
        assert (await client.cancel_job(spare["id"]))["state"] == "cancelled"
        # A prompt longer than the model's context fails its record alone, not the job; a job
        # whose every record failed is failed, saying why.
        too_long = "word " * 6000
        params = {"max_tokens": 4}
        mixed = await client.submit_batch({"prompts": ["Say hi.", too_long], "params": params})
        lost = await client.submit_batch({"prompts": [too_long], "params": params})
        for _ in range(3):  # one job per --once
            worked = await asyncio.to_thread(textnlp, "worker", "--once", "--wait", "0.5")
            assert worked.returncode == 0, worked.stderr
        assert (await client.job_status(job["id"]))["state"] == "succeeded"
        mixed_now = await client.job_status(mixed["id"])
        assert mixed_now["state"] == "succeeded", mixed_now
        assert mixed_now["progress"] == {"done": 2, "total": 2, "failed": 1}
        lost_now = await client.job_status(lost["id"])
        assert lost_now["state"] == "failed", lost_now
        assert lost_now["error"].startswith("every record failed (1); the first: ")
        assert "context" in lost_now["error"]
        sink = io.BytesIO()
        written = await client.download_results(job["id"], sink)
        lines = sink.getvalue().decode().splitlines()
        assert written == len(sink.getvalue()) and len(lines) == 1
        assert json.loads(lines[0])["index"] == 0
