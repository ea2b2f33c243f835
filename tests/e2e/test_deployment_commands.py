"""The commands the deployment runs (``textnlp.deployment``, which the task definitions and the
Dockerfiles use) against the real CLI, as processes, on the local profile: each one starts,
does its job and stops cleanly. The rehearsal runs them again as deployed (``make rehearse``).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, wait_for_port
from textnlp import deployment

BIN = Path(sys.executable).parent


def run(command: tuple[str, ...], home: Path, **kw: Any) -> subprocess.Popen[str]:
    executable, *args = command
    env = {**os.environ, "TEXTNLP_HOME": str(home), "TEXTNLP_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [str(BIN / executable), *args],
        cwd=home.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[arg-type]
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def wait_for_sigterm_handler(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until the process catches SIGTERM (Linux's SigCgt mask), or it ends, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caught = int(
            next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
        )
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.1)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_the_migration_task_upgrades_the_database(home: Path) -> None:
    code, err = finish(run(deployment.MIGRATE_COMMAND, home))
    assert code == 0, err
    again, err = finish(run(deployment.MIGRATE_COMMAND, home))  # idempotent
    assert again == 0, err
    current, _ = finish(run(("textnlp", "db", "current"), home))
    assert current == 0


@pytest.mark.parametrize("days", [1, 90])
def test_the_scheduled_purge_task_runs(home: Path, days: int) -> None:
    """The daily retention task (the infra's ``jobs.retention_days``, 1 or more) runs as
    deployed; its purging itself is ``test_jobs_cli_delete.py``'s."""
    code, err = finish(run(deployment.MIGRATE_COMMAND, home))
    assert code == 0, err
    proc = run(deployment.jobs_purge_command(days), home)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out == f"purged 0 jobs ended over {days} days ago\n"


def test_the_purge_task_refuses_a_retention_under_a_day(home: Path) -> None:
    # The infra refuses such a retention too (`JobsConfig`): the CLI is the bound's source.
    proc = run(deployment.jobs_purge_command(0), home)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and out == "" and "--older-than" in err


def test_the_batch_processor_exits_when_its_queue_is_empty(home: Path) -> None:
    code, err = finish(run(deployment.BATCH_PROCESSOR_COMMAND, home))
    assert code == 0, err
    assert "worker stopped after 0 message(s)" in err


@pytest.mark.parametrize(
    "command", [deployment.GENERATION_COMMAND, deployment.VALIDATION_COMMAND], ids=str
)
def test_the_workers_run_until_sigterm(command: tuple[str, ...], home: Path) -> None:
    proc = run(command, home)
    wait_for_sigterm_handler(proc)  # started: a slow machine can take seconds to get there
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()[1]  # still consuming
    proc.send_signal(signal.SIGTERM)  # what ECS sends when it stops a task
    code, err = finish(proc, 30)
    assert code == 0, err


def test_the_api_serves_its_health_check(home: Path) -> None:
    port = free_port()
    # The only change from the deployed command: the port (no task network namespace here).
    command = tuple(
        str(port) if part == str(deployment.API_PORT) else part for part in deployment.API_COMMAND
    )
    proc = run(command, home)
    try:
        wait_for_port(port, 60, proc)  # type: ignore[arg-type]
        probe = deployment.HEALTH_CHECK_COMMAND.replace(f":{deployment.API_PORT}/", f":{port}/")
        args = shlex.split(probe)
        checked = subprocess.run(
            [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc, 30)
    # uvicorn shuts down gracefully, then re-raises the signal: ECS sees exit 143 (SIGTERM).
    assert code in (0, -signal.SIGTERM), err
    assert "Traceback" not in err


def test_a_bad_setting_stops_a_container_with_one_line_naming_it(home: Path) -> None:
    env = {**os.environ, "TEXTNLP_HOME": str(home), "TEXTNLP_DATABASE__PORT": "s3cr3t-value"}
    executable, *args = deployment.GENERATION_COMMAND
    done = subprocess.run(
        [str(BIN / executable), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "TEXTNLP_DATABASE__PORT" in lines[0]
    assert "s3cr3t" not in done.stderr


def test_an_unmigrated_server_database_refuses_to_serve(postgres_url: str, home: Path) -> None:
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"unmigrated_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        env = {
            **os.environ,
            "TEXTNLP_HOME": str(home),
            "TEXTNLP_DATABASE__URL": f"{postgres_url}?options=-csearch_path={schema}",
        }
        executable, *args = deployment.VALIDATION_COMMAND
        done = subprocess.run(
            [str(BIN / executable), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2
        assert "run `textnlp db upgrade`" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
