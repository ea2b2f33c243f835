"""The rehearsal (`make rehearse`): the synthesised production stage, run as processes on moto
and local stand-ins, serves a user's whole journey. One test: the rehearsal passes.

It reuses the session's synthesised assembly (`--cdk-out`), runs as its own process (it starts
servers, mount namespaces and signal handlers), and needs the machine's PostgreSQL 15 binaries
and redis-server; locally a missing one skips, in CI (`CI=true`) it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra_assembly import Assembly, require_tool

INFRA_DIR = Path(__file__).resolve().parent.parent
POSTGRES_INITDB = Path("/usr/lib/postgresql/15/bin/initdb")
#: The whole journey takes a few minutes on 2 cores; this bounds a hang, not the duration.
TIMEOUT_S = 1200


def _tool(name: str) -> str | None:
    return shutil.which(name)


@pytest.mark.timeout(TIMEOUT_S + 60)
def test_the_rehearsed_deployment_serves_the_journey(assembly: Assembly) -> None:
    require_tool(str(POSTGRES_INITDB) if POSTGRES_INITDB.exists() else None,
                 "PostgreSQL 15 (initdb)")
    for name in ("redis-server", "redis-cli"):
        require_tool(_tool(name), name)
    if os.geteuid() == 0:
        require_tool(_tool("unshare"), "unshare (read-only root filesystems)")
        require_tool(_tool("setpriv"), "setpriv (the images' USER)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "rehearsal", "--cdk-out", str(assembly.directory)],
        cwd=INFRA_DIR, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    report = (done.stdout + done.stderr)[-20000:]
    assert done.returncode == 0, f"the rehearsal failed (exit {done.returncode}):\n{report}"


def test_a_checkout_under_the_containers_scratch_path_is_refused_in_one_line() -> None:
    from rehearsal.run import check_location

    with pytest.raises(RuntimeError, match="clone the project elsewhere") as refused:
        check_location(Path("/tmp/checkout/.venv"))
    assert "\n" not in str(refused.value)
    check_location(Path("/check/work/main/.venv"))  # CI's place: fine
