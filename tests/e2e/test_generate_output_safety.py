"""``textnlp generate`` never loses a user's data, as real processes on fake models: a second
run on an output is refused while the first runs (both used to exit 0 and leave an empty file),
an output or rejects file that is the recipe's seed file is refused, Ctrl-C names what really
holds the finished records, and a rerun without ``--resume`` says what progress it discards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cluster import ROOT, wait_for
from tests.support.job_backends import MODELS_YAML
from textnlp.generation.journal import journal_path
from textnlp.generation.output_lock import lock_path

KEPT = "a line the user keeps\n"
#: ``fake-glacial`` answers after a minute: a run that never finishes a record in a test;
#: ``fake-marked`` too, making the file ``started`` (in the run's directory) at its first request.
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


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr


def journal_lines(out: Path) -> int:
    journal = journal_path(out)
    return journal.read_text().count("\n") if journal.exists() else 0


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


SLOW_RUN = ["generate", "-t", "intent-utterance", "-n", "400", "-c", "1", "-m", "fake-crawl"]


def test_a_second_run_on_an_output_in_use_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "conc2.jsonl"
    out.write_text(KEPT)
    first = start(tmp_path, *SLOW_RUN, "-o", "conc2.jsonl", "--seed", "41")
    try:
        wait_for(lambda: journal_lines(out) >= 2, 60, "the first run's records")
        second = cli(tmp_path, "generate", "-t", "intent-utterance", "-n", "5", "-o",
                     "conc2.jsonl", "--seed", "42", "-m", "fake-fast")  # fmt: skip
        refused(second, f"another run is writing conc2.jsonl (pid {first.pid})")
        assert out.read_text() == KEPT
        assert journal_lines(out) >= 2  # the first run's progress is still there
    finally:
        stderr = interrupt(first)
    # Only a completed run replaces another's dataset: the records wait in the journal.
    assert "finished records are in conc2.jsonl.partial.jsonl (conc2.jsonl is unchanged)" in stderr
    assert out.read_text() == KEPT
    kept = [json.loads(line) for line in journal_path(out).read_text().splitlines()]
    assert kept and all(r["provenance"]["seed"] is not None for r in kept)
    assert not lock_path(out).exists()


RECIPE = """\
id: seeded
columns:
  task: {type: seed, path: seeds.jsonl}
  line: {type: llm-text, prompt: "About {{ task.topic }}"}
"""
SEEDS = '{"topic": "tea"}\n{"topic": "rain"}\n'


def test_an_output_or_rejects_file_that_is_the_seed_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "seedr.yaml").write_text(RECIPE)
    (tmp_path / "seeds.jsonl").write_text(SEEDS)
    (tmp_path / "again.jsonl").symlink_to(tmp_path / "seeds.jsonl")
    run = ["generate", "-r", "seedr.yaml", "-n", "2", "-m", "fake-fast"]
    named = "is the recipe's seed file seeds.jsonl (column task)"
    refused(cli(tmp_path, *run, "-o", "seeds.jsonl"), f"output seeds.jsonl {named}")
    refused(cli(tmp_path, *run, "-o", "x.jsonl", "--rejects", "again.jsonl"),
            f"rejects file again.jsonl {named}")  # fmt: skip
    assert (tmp_path / "seeds.jsonl").read_text() == SEEDS
    assert not (tmp_path / "x.jsonl").exists()
    fine = cli(tmp_path, *run, "-o", "x.jsonl")
    assert fine.returncode == 0, fine.stderr


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


@pytest.mark.parametrize("apart_s", [0.0, 0.02, 0.3])
def test_ctrl_c_twice_names_the_file_that_holds_the_records(tmp_path: Path, apart_s: float) -> None:
    """The second Ctrl-C may stop the Parquet file being written: then the journal holds them.
    Whenever it comes, the run says so in one line and exits 130 (asyncio's own second Ctrl-C
    raised in its loop: a traceback after the message, and now and then a run that never
    exited)."""
    out = tmp_path / "x.parquet"
    run = start(tmp_path, *SLOW_RUN, "-o", "x.parquet")
    wait_for(lambda: journal_lines(out) >= 2, 60, "the run's records")
    stderr = interrupt(run, times=2, apart_s=apart_s)
    named = re.fullmatch(
        r"interrupted: finished records are in (\S+?)(;| \(x.parquet was not written\);) "
        r"run again with --resume to continue\n",
        stderr,
    )
    assert named is not None, stderr
    assert (tmp_path / named.group(1)).is_file(), stderr


def test_a_rerun_without_resume_warns_what_it_discards(tmp_path: Path) -> None:
    out = tmp_path / "keep.jsonl"
    run = start(tmp_path, *SLOW_RUN, "-o", "keep.jsonl")
    wait_for(lambda: journal_lines(out) >= 2, 60, "the run's records")
    assert "finished records are in keep.jsonl" in interrupt(run)
    unfinished = journal_lines(out)

    again = cli(tmp_path, "generate", "-t", "intent-utterance", "-n", "2", "-o", "keep.jsonl",
                "-m", "fake-fast")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [
        f"warning: discarding {unfinished} unfinished records of an earlier run of keep.jsonl; "
        "use --resume to keep them"
    ]
    assert len(out.read_text().splitlines()) == 2 and not journal_path(out).exists()


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
