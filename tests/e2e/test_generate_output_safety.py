"""``textnlp generate`` never loses a user's data, as real processes on the embedded model: a
second run on an output is refused while the first runs (both used to exit 0 and leave an empty
file), an output or rejects file that is the recipe's seed file is refused, Ctrl-C names what
really holds the finished records, and a rerun without ``--resume`` says what progress it
discards. (Ctrl-C before any record, or in a preview's first request, needs a model that does
not answer: ``tests/faults/test_generate_interrupts.py``.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.cluster import wait_for
from tests.support.interrupts import interrupt, refused
from tests.support.real_cli import TEXTNLP, cli_env
from textnlp.generation.journal import journal_path
from textnlp.generation.output_lock import lock_path

KEPT = "a line the user keeps\n"
#: Records the embedded model makes briefly: a test's runs take seconds, not minutes.
SHORT = ["--max-tokens", "8"]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TEXTNLP, *args], cwd=tmp_path, env=cli_env(tmp_path, {"COLUMNS": "200"}),
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TEXTNLP, *args], cwd=tmp_path, env=cli_env(tmp_path, {"COLUMNS": "200"}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def journal_lines(out: Path) -> int:
    journal = journal_path(out)
    return journal.read_text().count("\n") if journal.exists() else 0


#: A run far longer than any test waits for (400 records, one at a time), interrupted.
SLOW_RUN = ["generate", "-t", "intent-utterance", "-n", "400", "-c", "1", *SHORT]


def test_a_second_run_on_an_output_in_use_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "conc2.jsonl"
    out.write_text(KEPT)
    first = start(tmp_path, *SLOW_RUN, "-o", "conc2.jsonl", "--seed", "41")
    try:
        wait_for(lambda: journal_lines(out) >= 2, 120, "the first run's records")
        second = cli(tmp_path, "generate", "-t", "intent-utterance", "-n", "5", "-o",
                     "conc2.jsonl", "--seed", "42", *SHORT)  # fmt: skip
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
    run = ["generate", "-r", "seedr.yaml", "-n", "2", *SHORT]
    named = "is the recipe's seed file seeds.jsonl (column task)"
    refused(cli(tmp_path, *run, "-o", "seeds.jsonl"), f"output seeds.jsonl {named}")
    refused(cli(tmp_path, *run, "-o", "x.jsonl", "--rejects", "again.jsonl"),
            f"rejects file again.jsonl {named}")  # fmt: skip
    assert (tmp_path / "seeds.jsonl").read_text() == SEEDS
    assert not (tmp_path / "x.jsonl").exists()
    fine = cli(tmp_path, *run, "-o", "x.jsonl")
    assert fine.returncode == 0, fine.stderr


@pytest.mark.parametrize("apart_s", [0.0, 0.02, 0.3])
def test_ctrl_c_twice_names_the_file_that_holds_the_records(tmp_path: Path, apart_s: float) -> None:
    """The second Ctrl-C may stop the Parquet file being written: then the journal holds them.
    Whenever it comes, the run says so in one line and exits 130 (asyncio's own second Ctrl-C
    raised in its loop: a traceback after the message, and now and then a run that never
    exited)."""
    out = tmp_path / "x.parquet"
    run = start(tmp_path, *SLOW_RUN, "-o", "x.parquet")
    wait_for(lambda: journal_lines(out) >= 2, 120, "the run's records")
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
    wait_for(lambda: journal_lines(out) >= 2, 120, "the run's records")
    assert "finished records are in keep.jsonl" in interrupt(run)
    unfinished = journal_lines(out)

    again = cli(tmp_path, "generate", "-t", "intent-utterance", "-n", "2", "-o", "keep.jsonl",
                *SHORT)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [
        f"warning: discarding {unfinished} unfinished records of an earlier run of keep.jsonl; "
        "use --resume to keep them"
    ]
    assert len(out.read_text().splitlines()) == 2 and not journal_path(out).exists()
