"""Every bench script starts: ``--help`` as a script from the repository root, and
``bench/dataset_memory.py``'s child on a few records.

A bench script is run by hand, rarely; one that cannot even start (an import its code needs
at run time kept under ``TYPE_CHECKING``, a name another package shadows) stays broken until
someone tries. Each ``--help`` takes about a second; measuring anything is left to the scripts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    path.name
    for path in (ROOT / "bench").glob("*.py")
    if 'if __name__ == "__main__"' in path.read_text()
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_every_bench_script_is_found() -> None:
    assert {"dataset_memory.py", "validation.py", "leakage_containment.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_bench_script_starts(script: str) -> None:
    done = _run(f"bench/{script}", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


@pytest.mark.parametrize(("fmt", "mode"), [("jsonl", "streamed"), ("parquet", "run-end")])
def test_the_dataset_memory_child_writes_a_few_records(fmt: str, mode: str) -> None:
    done = _run("bench/dataset_memory.py", "--child", fmt, mode, "20")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.split()[-1]) >= 0  # the peak's growth in bytes
