"""Worker subprocesses against a shared database, for the fault tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.job_backends import MODELS_YAML, register
from textnlp.bootstrap import Platform
from textnlp.config import Settings, load_settings
from textnlp.services.jobs import JobService

ROOT = Path(__file__).resolve().parents[2]  # the repository (tests/support/cluster.py)


@dataclass
class Cluster:
    """Settings shared by this test process and its worker processes."""

    tmp: Path
    database_url: str
    monkeypatch: pytest.MonkeyPatch
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    platforms: list[Platform] = field(default_factory=list)

    def __post_init__(self) -> None:
        register()
        models = self.tmp / "models.yaml"
        models.write_text(MODELS_YAML)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEXTNLP_HOME": str(self.tmp / "home"),
            "TEXTNLP_MODELS_FILE": str(models),
            "TEXTNLP_DATABASE__URL": self.database_url,
            "TEXTNLP_QUEUE__VISIBILITY_TIMEOUT_S": "2",
            "TEXTNLP_QUEUE__HEARTBEAT_S": "0.5",
            "TEXTNLP_QUEUE__CHUNK_SIZE": "10",
            "TEXTNLP_GENERATION__RESPONSE_CACHE": "false",
            "TEXTNLP_GENERATION__CONCURRENCY": "4",
            "TEXTNLP_LOG_LEVEL": "WARNING",
        }
        for name, value in self.env.items():
            if name.startswith("TEXTNLP_"):
                self.monkeypatch.setenv(name, value)

    def set(self, name: str, value: str) -> None:
        self.env[name] = value
        self.monkeypatch.setenv(name, value)

    def settings(self) -> Settings:
        return load_settings()

    def service(self) -> JobService:
        """The job service of this test process (closed by ``stop_all``)."""
        platform = Platform(self.settings())
        self.platforms.append(platform)
        return platform.jobs

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.worker_main",
                "worker",
                "--wait",
                "0.5",
                *args,
            ],
            env=self.env,
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        for platform in self.platforms:
            platform.close()


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_cli_with_test_backends(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess with the test backends registered (``worker_main``; models.yaml
    in ``tmp_path``: ``fake-fast``, ``poison``...), run from ``tmp_path`` (its home). For the
    fault tests, whose models misbehave on purpose; the end-to-end tests run the installed CLI
    (``tests.support.real_cli``)."""
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    return subprocess.run(
        [sys.executable, "-m", "tests.support.worker_main", *args],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEXTNLP_MODELS_FILE": str(models),
            "TEXTNLP_GENERATION__RESPONSE_CACHE": "false",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
