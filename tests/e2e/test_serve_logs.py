"""``textnlp serve`` as a process: what it writes to its log never carries a credential.

A browser can only authenticate a WebSocket in the query string (``?access_token=``), and
uvicorn logs the handshake with the query string; the whole output is searched for the token.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import free_port, stop_process, wait_for_port

pytestmark = pytest.mark.slow
PASSWORD = "e2e-password-123"
TEXTNLP = [sys.executable, "-m", "textnlp.cli.main"]


async def _connect(url: str, *, send: bool) -> None:
    try:
        async with websockets.connect(url) as socket:
            if send:
                await socket.send('{"prompt": "Say hi.", "max_tokens": 2, "temperature": 0}')
                await asyncio.wait_for(socket.recv(), timeout=120)
    except websockets.InvalidStatus:
        pass  # a refused token: the handshake line is logged all the same


def test_websocket_tokens_never_reach_the_log(_isolated_home: Path, tmp_path: Path) -> None:
    created = subprocess.run(
        [*TEXTNLP, "users", "create", "dora", "--password-stdin"],
        input=PASSWORD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*TEXTNLP, "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TEXTNLP_LOG_LEVEL": "DEBUG"},
        )
        try:
            wait_for_port(port, timeout=60, proc=proc)  # type: ignore[arg-type]
            base = f"http://127.0.0.1:{port}"
            login = httpx.post(
                f"{base}/api/v1/auth/login", json={"username": "dora", "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            ws = f"ws://127.0.0.1:{port}/api/v1/generate/stream"
            asyncio.run(_connect(f"{ws}?access_token={token}", send=True))
            asyncio.run(_connect(f"{ws}?access_token=forged-{token[:20]}&x=1", send=False))
            asyncio.run(_connect(f"{ws}?token=SECRET-TOKEN-VALUE&api_key=SECRET-KEY", send=False))
            httpx.get(f"{base}/api/v1/models/list?api_key=SECRET-IN-QUERY")
        finally:
            stop_process(proc)
    output = log_path.read_text()
    assert "WebSocket /api/v1/generate/stream?access_token=[redacted]" in output  # uvicorn's
    for secret in (token, token[:20], "SECRET-TOKEN-VALUE", "SECRET-KEY", "SECRET-IN-QUERY"):
        assert secret not in output
