"""A failed job on the command line, as real processes: ``jobs results`` of a failed job saves
the records it kept and says why on stderr, and ``jobs status --wait`` (and ``submit --wait``)
exits 1 when the job failed.

These inject failing models, so they run the CLI with the test backends registered
(``tests.support.worker_main``): ``poison`` (every request fails) and ``refuses-later`` (the
provider refuses each request after the first 12, as a job whose later prompts go wrong). No
real model fails on cue; the end-to-end commands of a job that works are in
``tests/e2e/test_jobs_cli_refusals.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import stop_process
from tests.support.cluster import ROOT, run_cli_with_test_backends
from tests.support.jobs_cli import refused, submitted


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli_with_test_backends(tmp_path, *args, timeout=120)


def test_results_of_a_failed_job_are_the_records_it_kept_said_on_stderr(tmp_path: Path) -> None:
    small_chunks = {"TEXTNLP_QUEUE__CHUNK_SIZE": "4"}
    args = ["jobs", "submit", "-t", "news-headline", "-n", "20", "-m", "refuses-later"]
    job = submitted(cli(tmp_path, *args))
    worked = run_cli_with_test_backends(
        tmp_path, "worker", "--once", "--wait", "0.3", env=small_chunks
    )
    assert worked.returncode == 0, worked.stderr
    saved = cli(tmp_path, "jobs", "results", str(job["id"]), "-o", "kept.jsonl")
    assert saved.returncode == 0, saved.stderr
    said = f"job {job['id']} failed: InvalidRequest: the provider refused the request;"
    assert said in saved.stderr and "the file holds the records it kept" in saved.stderr
    kept = [json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert 4 <= len(kept) < 20 and all(record["text"] for record in kept)


def test_wait_exits_1_when_the_job_failed(tmp_path: Path) -> None:
    poisoned = submitted(cli(tmp_path, "jobs", "submit", "--prompt", "Say hi", "-m", "poison"))
    fine = submitted(cli(tmp_path, "jobs", "submit", "--prompt", "Say hi", "-m", "fake-fast"))
    assert cli(tmp_path, "worker", "--once", "--wait", "0.3").returncode == 0
    failed = cli(tmp_path, "jobs", "status", str(poisoned["id"]), "--wait")
    refused(failed, f"job {poisoned['id']} failed: ", code=1)
    assert "internal error (RuntimeError)" in failed.stderr
    assert json.loads(failed.stdout)["state"] == "failed"  # the job is printed all the same
    assert json.loads(cli(tmp_path, "jobs", "status", str(poisoned["id"])).stdout)["state"] == (
        "failed"
    )  # without --wait: the state, exit 0
    assert submitted(cli(tmp_path, "jobs", "status", str(fine["id"]), "--wait"))["state"] == (
        "succeeded"
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_main", "worker", "--wait", "0.3"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT),
             "TEXTNLP_MODELS_FILE": str(tmp_path / "models.yaml"),
             "TEXTNLP_QUEUE__RETRY_DELAY_S": "0"},  # its attempts at once: the exit code counts
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        waited = cli(tmp_path, "jobs", "submit", "--prompt", "Hi", "-m", "poison", "--wait")
    finally:
        stop_process(worker)
    refused(waited, "failed: ", code=1)
    assert json.loads(waited.stdout)["state"] == "failed"
