"""Ctrl-C and a second run while ``textnlp generate`` (or ``preview``) waits on a model that
does not answer, as real processes: Ctrl-C before any record leaves the output unchanged and
says so, Ctrl-C in a preview says nothing was written, and a second run on a rejects file in
use is refused.

These need a run caught before its first record, which no real model holds still for, so they
inject test backends (``tests.support.worker_main``): ``fake-glacial`` answers after a minute,
and ``fake-marked`` too, making the file ``started`` (in the run's directory) at its first
request. The same commands on the embedded model:
``tests/e2e/test_generate_output_safety.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cluster import ROOT, wait_for
from tests.support.interrupts import interrupt, refused
from tests.support.job_backends import MODELS_YAML
from textnlp.generation.journal import journal_path
from textnlp.generation.output_lock import lock_path

KEPT = "a line the user keeps\n"
MODELS = MODELS_YAML + (
    "  - {id: fake-glacial, backend: fake-slow, options: {delay_s: 60}}\n"
    "  - {id: fake-marked, backend: fake-slow, options: {delay_s: 60, started_file: started}}\n"
)


def command(tmp_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEXTNLP_MODELS_FILE": str(models),
        "TEXTNLP_GENERATION__RESPONSE_CACHE": "false",
        "COLUMNS": "200",
    }
    return [sys.executable, "-m", "tests.support.worker_main", *args], env


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv, env = command(tmp_path, *args)
    return subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    argv, env = command(tmp_path, *args)
    return subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_ctrl_c_before_any_record_leaves_the_output_unchanged_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "keep3.jsonl"
    out.write_text(KEPT)  # an older, unrelated run's dataset
    run = start(tmp_path, "generate", "-t", "intent-utterance", "-n", "3", "-o", "keep3.jsonl",
                "-m", "fake-glacial")  # fmt: skip
    wait_for(lambda: lock_path(out).exists(), 60, "the run to start")
    time.sleep(0.3)  # waiting on its first records
    stderr = interrupt(run)
    assert stderr.strip() == "interrupted before any record was finished; keep3.jsonl is unchanged"
    assert out.read_text() == KEPT
    assert not journal_path(out).exists()


def test_ctrl_c_in_a_preview_says_nothing_was_written(tmp_path: Path) -> None:
    """It ended with exit 130 and no word."""
    proc = start(tmp_path, "preview", "product-review", "-n", "3", "-m", "fake-marked")
    try:
        wait_for((tmp_path / "started").exists, 60, "the preview's first request")
    finally:
        stderr = interrupt(proc)
    assert stderr == "interrupted; nothing was written\n"


def test_a_second_run_on_a_rejects_file_in_use_is_refused(tmp_path: Path) -> None:
    """Two runs given one ``--rejects`` each replaced the other's rejected candidates."""
    first = start(tmp_path, "generate", "-r", "product-reviews", "-n", "2", "-m", "fake-marked",
                  "-o", "a.jsonl", "--rejects", "shared.jsonl")  # fmt: skip
    try:
        wait_for((tmp_path / "started").exists, 60, "the first run's first request")
        second = cli(tmp_path, "generate", "-r", "product-reviews", "-n", "2", "-m", "fake-fast",
                     "-o", "b.jsonl", "--rejects", "shared.jsonl")  # fmt: skip
        refused(second, f"another run is writing shared.jsonl (pid {first.pid})")
        assert not (tmp_path / "b.jsonl").exists()
    finally:
        interrupt(first)
