"""``textnlp serve`` as a process: a whole (non-streaming) answer whose client has gone is not
made to its end. An abandoned request generated on (a 256-token answer finished 142 s after
its client's timeout; a client that then retries makes the server generate twice).

The model answers after a minute; each client gives up after a second. The server's access
log must say 499 (client closed) for each route well within that minute, not 200 at its end.
A fault test: no real model holds an answer back for a minute on cue, so the server is the CLI
with the test backends registered (``tests.support.worker_main``), its model ``fake-slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, stop_process, wait_for_port
from tests.support.cluster import ROOT

pytestmark = pytest.mark.slow
#: The model's time to answer; the log must say 499 long before (well within it).
ANSWER_S = 60.0
MODELS = f"""
models:
  - id: minute
    backend: fake-slow
    context_length: 4096
    options: {{delay_s: {ANSWER_S}}}
"""
CLI = [sys.executable, "-m", "tests.support.worker_main"]  # the CLI with test backends


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(url, API key, access log) of a served app whose model ``minute`` takes a minute."""
    home = tmp_path_factory.mktemp("client-gone")
    (home / "models.yaml").write_text(MODELS)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEXTNLP_")},
        "PYTHONPATH": str(ROOT),
        "TEXTNLP_HOME": str(home / "textnlp-home"),
        "TEXTNLP_MODELS_FILE": str(home / "models.yaml"),
        "TEXTNLP_GENERATION__RESPONSE_CACHE": "false",
    }
    made = subprocess.run(
        [*CLI, "users", "create", "dana", "--password-stdin"],
        input="dana-password-123",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    key = subprocess.run(
        [*CLI, "users", "api-key", "dana"], capture_output=True, text=True, env=env, timeout=120
    )
    assert key.returncode == 0, key.stderr
    port = free_port()
    log = home / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
        try:
            wait_for_port(port, timeout=90, proc=proc)  # type: ignore[arg-type]
            yield f"http://127.0.0.1:{port}", key.stdout.strip(), log
        finally:
            stop_process(proc)


def logged_status(log: Path, route: str) -> int | None:
    """The status of the access log's line for ``POST route`` (its template), if logged."""
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") == "textnlp.api.access" and record["message"].startswith(
            f"POST {route} "
        ):
            return int(record["status"])
    return None


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/api/v1/generate/text", {"model": "minute", "prompt": "Hi", "max_tokens": 8}),
        ("/api/v1/models/{model_id}/invoke", {"prompt": "Hi", "max_tokens": 8}),
        (
            "/v1/chat/completions",
            {"model": "minute", "messages": [{"role": "user", "content": "Hi"}]},
        ),
        ("/v1/completions", {"model": "minute", "prompt": "Hi", "max_tokens": 8}),
    ],
)
def test_an_answer_whose_client_left_is_not_made(
    server: tuple[str, str, Path], route: str, body: dict[str, object]
) -> None:
    url, key, log = server
    headers = {"Authorization": f"Bearer {key}"}
    path = route.replace("{model_id}", "minute")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + path, json=body, headers=headers, timeout=1.0)
    deadline = time.monotonic() + ANSWER_S / 2
    while logged_status(log, route) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert logged_status(log, route) == 499, log.read_text()[-3000:]
