"""Checks on ``textnlp generate`` runs a test started as processes: a one-line refusal, and
Ctrl-C as a person presses it."""

from __future__ import annotations

import signal
import subprocess
import time


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    """``result`` was refused with one ``error:`` line naming ``message``, exit 2."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr


def interrupt(proc: subprocess.Popen[str], times: int = 1, apart_s: float = 0.02) -> str:
    """Ctrl-C (``times`` of them, ``apart_s`` apart); the run's stderr."""
    for i in range(times):
        if i:
            time.sleep(apart_s)
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    # A shell reports both as 130. Python itself ends by SIGINT, after the program's own exit,
    # when a KeyboardInterrupt ever crossed certain C-level code (now and then seen here).
    assert proc.returncode in (130, -signal.SIGINT), stderr
    return stderr
