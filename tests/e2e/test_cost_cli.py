"""Cost on the command line, as real processes: ``generate --max-cost`` stops a run with one
line and exit 2, keeping a valid file to resume; the summary shows the estimated cost; a job's
cost and cap show in ``jobs status``; ``users spending-cap`` sets a user's own cap. The model is
``fake-priced``: the real ``openai`` backend of the installed CLI, talking over TCP to an
OpenAI-compatible server faked at the HTTP level (``tests.support.priced_server``: OpenAI
cannot be reached from here). The unpriced model is the embedded one."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.priced_server import PRICED_ENV, priced_models, priced_server
from tests.support.real_cli import run_cli


@pytest.fixture(scope="module")
def priced_url() -> Iterator[str]:
    with priced_server() as base_url:
        yield base_url


@pytest.fixture
def cli(priced_url: str) -> Any:
    """``textnlp`` with ``fake-priced`` in its catalogue beside the built-in models."""

    def run(
        tmp_path: Path, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**PRICED_ENV, "COLUMNS": "120"}
        return run_cli(tmp_path, *args, env=env, stdin=stdin, models=priced_models(priced_url))

    return run


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def cost(rows: list[dict[str, Any]]) -> float:
    return sum(float(r["provenance"]["cost_usd"]) for r in rows)  # type: ignore[index]


RUN = ["generate", "-t", "product-review", "-n", "30", "-o", "out.jsonl", "-m", "fake-priced"]


def test_max_cost_stops_the_run_with_one_line_and_exit_2(tmp_path: Path, cli: Any) -> None:
    stopped = cli(tmp_path, *RUN, "-c", "4", "--max-cost", "0.8")
    assert stopped.returncode == 2, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1, stopped.stderr
    assert lines[0].startswith(
        "error: spending cap of this run (max_cost_usd / --max-cost) reached"
    )
    assert "would exceed $0.8000" in lines[0] and "Traceback" not in stopped.stderr
    kept = records(tmp_path / "out.jsonl")  # a valid dataset of what was paid for
    indices = [int(r["index"]) for r in kept]  # type: ignore[call-overload]
    assert 0 < len(kept) < 30 and indices == sorted(set(indices))
    assert f"{len(kept)} of 30 records written to out.jsonl" in lines[0]
    assert "--resume" in lines[0]
    assert cost(kept) <= 0.8

    resumed = cli(tmp_path, *RUN, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [r["index"] for r in records(tmp_path / "out.jsonl")] == list(range(30))
    assert "estimated cost" in resumed.stdout and "$" in resumed.stdout


def test_max_cost_leaves_an_earlier_dataset_and_says_where_the_records_are(
    tmp_path: Path, cli: Any
) -> None:
    """A stopped run wrote its few records over a complete dataset of another run."""
    (tmp_path / "out.jsonl").write_text("an earlier run's dataset\n")
    stopped = cli(tmp_path, *RUN, "-c", "4", "--max-cost", "0.8")
    assert stopped.returncode == 2, stopped.stderr
    assert (tmp_path / "out.jsonl").read_text() == "an earlier run's dataset\n"
    kept = records(tmp_path / "out.jsonl.partial.jsonl")
    assert kept and cost(kept) <= 0.8
    assert (
        f"{len(kept)} finished records are in out.jsonl.partial.jsonl (out.jsonl is unchanged)"
        in stopped.stderr
    ), stopped.stderr


def test_summary_has_no_cost_for_unpriced_models(tmp_path: Path, cli: Any) -> None:
    free = cli(tmp_path, "generate", "-t", "product-review", "-n", "2", "-o", "f.jsonl", "-m",
               "smollm2-135m", "--max-tokens", "8", "--max-cost", "0")  # fmt: skip
    assert free.returncode == 0, free.stderr  # nothing to pay: a zero cap stops nothing
    assert "Generation summary" in free.stdout and "estimated cost" not in free.stdout


def test_job_cost_and_cap_in_jobs_status(tmp_path: Path, cli: Any) -> None:
    submitted = cli(tmp_path, "jobs", "submit", "-t", "product-review", "-n", "30", "-m",
                    "fake-priced", "--max-cost", "0.5")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["max_cost_usd"] == 0.5 and job["cost_usd"] is None
    assert cli(tmp_path, "worker", "--once", "--wait", "0.3").returncode == 0
    status = json.loads(cli(tmp_path, "jobs", "status", job["id"]).stdout)
    assert status["state"] == "failed" and "spending cap" in status["error"]
    assert "max_cost_usd" in status["error"]
    assert 0 < status["cost_usd"] <= 0.5 and 0 < status["progress"]["done"] < 30


def test_users_spending_cap(tmp_path: Path, cli: Any) -> None:
    created = cli(tmp_path, "users", "create", "bob", "--password-stdin", stdin="long enough pw\n")
    assert created.returncode == 0, created.stderr
    own = cli(tmp_path, "users", "spending-cap", "bob", "5")
    assert own.returncode == 0 and "bob: spending cap $5.0000, $0.0000 spent" in own.stdout
    cleared = cli(tmp_path, "users", "spending-cap", "bob")
    assert cleared.returncode == 0 and "spending cap none (the default)" in cleared.stdout
    missing = cli(tmp_path, "users", "spending-cap", "nobody", "1")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no user 'nobody'"


def test_a_cap_that_is_no_amount_is_refused_for_runs_and_jobs(tmp_path: Path, cli: Any) -> None:
    """``--max-cost nan`` said "should be greater than or equal to 0"."""
    for args in (RUN, ["jobs", "submit", "-t", "product-review", "-n", "3"]):
        for given in ("nan", "-1"):
            refused = cli(tmp_path, *args, "--max-cost", given)
            assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
            assert "'--max-cost': must be 0 or more US dollars, got" in refused.stderr
    assert not (tmp_path / "out.jsonl").exists()
