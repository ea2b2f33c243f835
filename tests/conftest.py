"""Fixtures shared by every tier: real services, moto's server, the embedded model.

A test that needs a service it cannot reach skips with the reason, except in CI (``CI=true``),
where it fails: CI must exercise the real thing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get(
    "TEXTNLP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEXTNLP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a real dependency of the test is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Ctrl-C, as a person stops a server; killed if it has not ended within ``timeout``."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own TEXTNLP_HOME, and no developer .env leaks in; the engines the
    library kept loaded in this process (2.4 GB each) are closed after it."""
    home = tmp_path / "textnlp-home"
    monkeypatch.setenv("TEXTNLP_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if (
            name.startswith("TEXTNLP_")
            and name not in {"TEXTNLP_HOME"}
            and not name.startswith("TEXTNLP_TEST_")
        ):
            monkeypatch.delenv(name)
    yield home
    library = sys.modules.get("textnlp.library")
    if library is not None:
        library.unload_models()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    require(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    require(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 for S3, SQS, Secrets Manager, CloudWatch, ECS...; its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials pointing boto3 at moto's server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server
