"""Checks on ``textnlp jobs`` commands a test ran as processes: a submit's job, and a refusal
whose ``error:`` line comes last (after ``--wait``'s progress)."""

from __future__ import annotations

import json
import subprocess


def submitted(answer: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert answer.returncode == 0, answer.stderr
    job: dict[str, object] = json.loads(answer.stdout)
    return job


def refused(answer: subprocess.CompletedProcess[str], message: str, code: int = 2) -> None:
    assert answer.returncode == code, (answer.returncode, answer.stdout, answer.stderr)
    assert message in answer.stderr and "Traceback" not in answer.stderr, answer.stderr
    assert answer.stderr.splitlines()[-1].startswith("error: ")  # after --wait's progress
