"""``textnlp jobs delete`` (against ``textnlp serve`` and locally) and the operator's ``textnlp
jobs purge``, as processes on the real PostgreSQL with the embedded model: an ended job goes
with its files, a running one is refused, a purge takes only the jobs that ended long ago."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support.api import postgres_schema_url
from tests.support.jobs_cli import refused, submitted
from tests.support.serve import Served, ServeUser, serve
from textnlp.adapters.db.base import make_engine

#: A short job of the embedded model.
JOB = ["jobs", "submit", "-t", "product-review", "-n", "2", "--param", "max_tokens=4"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("jobs-delete-cli")
    for url in postgres_schema_url():
        env = {"TEXTNLP_DATABASE__URL": url}
        with serve(root, users=[ServeUser("erin", "erin-password-123")], env=env) as api:
            yield api


@pytest.fixture(scope="module")
def api_args(served: Served) -> list[str]:
    return ["--api", served.url, "--token", served.api_key("erin")]


def cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return served.cli(*args, timeout=120)


def files_of(served: Served, job_id: str) -> list[Path]:
    folder = served.home / "storage" / "generated" / "batch-jobs" / job_id
    return [p for p in folder.rglob("*") if p.is_file()]


def state(served: Served, job_id: str, *args: str) -> str:
    answer = cli(served, "jobs", "status", job_id, *args)
    assert answer.returncode == 0, answer.stderr
    found: str = json.loads(answer.stdout)["state"]
    return found


def one_line(answer: subprocess.CompletedProcess[str], message: str) -> None:
    assert answer.stderr.count("\n") == 1 and message in answer.stderr, answer.stderr


def test_delete_over_the_api_takes_an_ended_job_and_refuses_a_running_one(
    served: Served, api_args: list[str]
) -> None:
    ended = str(submitted(cli(served, *JOB, *api_args))["id"])
    served.work()
    assert state(served, ended, *api_args) == "succeeded"
    assert files_of(served, ended)

    deleted = cli(served, "jobs", "delete", ended, *api_args)
    assert deleted.returncode == 0, deleted.stderr
    one_line(deleted, f"deleted job {ended}")
    assert files_of(served, ended) == []
    refused(cli(served, "jobs", "status", ended, *api_args), "no job")
    refused(cli(served, "jobs", "delete", ended, *api_args), "no job")  # twice

    queued = str(submitted(cli(served, *JOB, *api_args))["id"])
    active = cli(served, "jobs", "delete", queued, *api_args)
    refused(active, "cancel it first")
    one_line(active, f"textnlp jobs cancel {queued}")
    assert state(served, queued, *api_args) == "queued"  # neither deleted nor cancelled
    assert cli(served, "jobs", "cancel", queued, *api_args).returncode == 0
    assert cli(served, "jobs", "delete", queued, *api_args).returncode == 0


def test_delete_locally_takes_an_ended_job(served: Served) -> None:
    job_id = str(submitted(cli(served, *JOB))["id"])
    refused(cli(served, "jobs", "delete", job_id), "cancel it first")
    assert cli(served, "jobs", "cancel", job_id).returncode == 0
    deleted = cli(served, "jobs", "delete", job_id)
    assert deleted.returncode == 0, deleted.stderr
    one_line(deleted, f"deleted job {job_id}")
    refused(cli(served, "jobs", "status", job_id), "no job")


def age(served: Served, job_id: str, days: int) -> None:
    """The job as if it had ended ``days`` ago (no test waits for days)."""
    engine = make_engine(served.env["TEXTNLP_DATABASE__URL"])
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE jobs SET finished_at = now() - make_interval(days => :d) WHERE id = :id"
                ),
                {"d": days, "id": job_id},
            )
    finally:
        engine.dispose()


def test_purge_takes_only_the_jobs_that_ended_long_ago(served: Served) -> None:
    old = str(submitted(cli(served, *JOB))["id"])
    served.work()
    assert state(served, old) == "succeeded" and files_of(served, old)
    age(served, old, 40)
    recent = str(submitted(cli(served, *JOB))["id"])
    assert cli(served, "jobs", "cancel", recent).returncode == 0
    age(served, recent, 20)
    active = str(submitted(cli(served, *JOB))["id"])

    purged = cli(served, "jobs", "purge", "--older-than", "30")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "purged 1 job ended over 30 days ago"
    refused(cli(served, "jobs", "status", old), "no job")
    assert files_of(served, old) == []
    assert state(served, recent) == "cancelled"
    assert state(served, active) == "queued"
    again = cli(served, "jobs", "purge", "--older-than", "30")
    assert again.stdout.strip() == "purged 0 jobs ended over 30 days ago"
    assert cli(served, "jobs", "cancel", active).returncode == 0


@pytest.mark.parametrize("days", [["0"], ["-3"], ["x"], []])
def test_purge_needs_a_positive_number_of_days(served: Served, days: list[str]) -> None:
    answer = cli(served, "jobs", "purge", *(["--older-than", *days] if days else []))
    refused(answer, "--older-than")
    assert answer.stderr.count("\n") == 1 and answer.stdout == ""
