"""``textnlp serve`` started as a process for the end-to-end tests, as an operator starts it.

Each server gets its own ``TEXTNLP_HOME`` (nothing of the developer's environment: every
``TEXTNLP_*`` variable but the tests' own is dropped), a free port on 127.0.0.1, and its users
made with ``textnlp users create`` before it starts. The CLI (``Served.cli``) and workers
(``Served.work``, ``Served.worker``) run with the same environment, so they share the server's
database, queue and storage (the local profile's SQLite and directories)::

    with serve(tmp_path, users=[ServeUser("carol", PASSWORD, admin=True)]) as server:
        httpx.get(f"{server.url}/api/v1/admin/health")
        server.work()  # ``textnlp worker --once``: runs what is queued, then exits

A server that does not listen within ``timeout`` fails the test with the tail of its log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port, stop_process, wait_for_port

#: ``python -m textnlp.cli.main``: the installed CLI, whatever the PATH.
TEXTNLP = (sys.executable, "-m", "textnlp.cli.main")


@dataclass(frozen=True)
class ServeUser:
    """A user made with ``textnlp users create`` before the server starts."""

    username: str
    password: str
    admin: bool = False


def textnlp_env(home: Path, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its ``TEXTNLP_*`` settings (the tests' own
    ``TEXTNLP_TEST_*`` stay), with ``TEXTNLP_HOME=home`` and ``overrides``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TEXTNLP_") or name.startswith("TEXTNLP_TEST_")
    }
    return {**env, "TEXTNLP_HOME": str(home), **(overrides or {})}


def run_textnlp(
    env: Mapping[str, str],
    cwd: Path,
    *args: str,
    stdin: str | None = None,
    timeout: float = 300,
    command: Sequence[str] = TEXTNLP,
) -> subprocess.CompletedProcess[str]:
    """``textnlp *args`` (``command``: another installation's) in a subprocess with ``env``,
    from ``cwd``."""
    return subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(env),
        cwd=cwd,
    )


@dataclass
class Served:
    """A running ``textnlp serve`` and the environment its CLI and workers share."""

    url: str
    root: Path
    env: dict[str, str]
    log: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: How ``textnlp`` is started (another virtual environment's, say).
    command: Sequence[str] = TEXTNLP
    #: The ``textnlp serve`` process (a test that signals it).
    process: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return Path(self.env["TEXTNLP_HOME"])

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``textnlp *args`` against this server's home."""
        return run_textnlp(
            self.env, self.root, *args, stdin=stdin, timeout=timeout, command=self.command
        )

    def create_user(self, user: ServeUser) -> None:
        args = ["users", "create", user.username, "--password-stdin"]
        created = self.cli(*args, *(["--admin"] if user.admin else []), stdin=user.password)
        assert created.returncode == 0, created.stderr

    def api_key(self, username: str) -> str:
        """A new API key of ``username`` (``textnlp users api-key``)."""
        made = self.cli("users", "api-key", username)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def work(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``textnlp worker --once``: run the queued jobs, then exit."""
        worked = self.cli("worker", "--once", "--wait", "0.5", *args, timeout=timeout)
        assert worked.returncode == 0, worked.stderr
        return worked

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        """``textnlp worker --once`` in the background (stopped with the server at the latest):
        for a test that watches a job progress while it runs."""
        proc = subprocess.Popen(
            [*self.command, "worker", "--once", "--wait", "0.5", *args],
            env=self.env,
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers.append(proc)
        return proc

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(
    root: Path,
    *,
    users: Sequence[ServeUser] = (),
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    timeout: float = 90,
    command: Sequence[str] = TEXTNLP,
) -> Iterator[Served]:
    """``textnlp serve`` on a free port, run from ``root`` with ``TEXTNLP_HOME=home`` (default
    ``root/textnlp-home``) and the settings in ``env``; ``users`` are created first. ``command``
    starts ``textnlp`` (default: this interpreter's)."""
    environ = textnlp_env(home or root / "textnlp-home", env)
    port = free_port()
    log = root / f"serve-{port}.log"
    served = Served(
        url=f"http://127.0.0.1:{port}", root=root, env=environ, log=log, command=command
    )
    for user in users:
        served.create_user(user)
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=root,
        )
        served.process = proc
        try:
            try:
                wait_for_port(port, timeout=timeout, proc=proc)  # type: ignore[arg-type]
            except (RuntimeError, TimeoutError) as exc:
                raise AssertionError(f"textnlp serve: {exc}\n{served.log_text()[-4000:]}") from exc
            yield served
        finally:
            for worker in served.workers:
                stop_process(worker)
            stop_process(proc)
