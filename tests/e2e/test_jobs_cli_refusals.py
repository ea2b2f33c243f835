"""``textnlp jobs`` with hostile input, locally and against ``textnlp serve``: a retried submit
gets its job, any file name uploads, what is no job id names no job, and a refused command
leaves nothing behind. The installed CLI with the embedded model (a failed job's commands,
which need a model that fails, are fault tests: ``tests/faults/test_jobs_cli_failures.py``)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.jobs_cli import refused, submitted
from tests.support.real_cli import run_cli
from tests.support.serve import Served, ServeUser, serve

PROMPTS = '{"prompt": "Say hi"}\n'
NAMES = ["a#b.jsonl", "a?b.jsonl", "x%2Fy.jsonl", "café.jsonl", "100%.jsonl", "a:b.jsonl"]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, *args, timeout=120)


def uploads(home: Path) -> list[Path]:
    return sorted((home / "storage" / "prompts" / "user-uploads").rglob("*.*"))


# -- local (no --api) ----------------------------------------------------------------------


def test_a_retried_local_submit_with_a_prompt_file_gets_its_job(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(PROMPTS)
    args = ["jobs", "submit", "--prompts-file", "p.jsonl", "--idempotency-key", "retry-78",
            "--param", "max_tokens=4"]  # fmt: skip
    first = submitted(cli(tmp_path, *args))
    again = submitted(cli(tmp_path, *args))
    assert again["id"] == first["id"]
    assert len(uploads(tmp_path / "textnlp-home")) == 1  # the retry left no second upload


def test_the_webhook_secrets_variable_applies_to_jobs_with_a_webhook(tmp_path: Path) -> None:
    """``TEXTNLP_WEBHOOK_SECRET`` set in a shell for the jobs that have a webhook: a job without
    one is submitted (it was refused for a secret without a webhook); the flag alone is said."""
    (tmp_path / "p.jsonl").write_text(PROMPTS)
    secret = {"TEXTNLP_WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    args = ["jobs", "submit", "--prompts-file", "p.jsonl", "--param", "max_tokens=4"]
    job = submitted(run_cli(tmp_path, *args, env=secret, timeout=120))
    assert "webhook_secret" not in json.dumps(job)
    flag = ["--webhook-secret", secret["TEXTNLP_WEBHOOK_SECRET"]]
    refused(cli(tmp_path, *args, *flag), "--webhook-secret signs the notices to --webhook")


def test_the_flag_without_a_webhook_is_refused_with_the_variable_set(tmp_path: Path) -> None:
    """The flag given, the variable set too: refused (it was dropped unsaid, the job submitted
    unsigned), one line, nothing submitted."""
    (tmp_path / "p.jsonl").write_text(PROMPTS)
    secret = {"TEXTNLP_WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    args = ["jobs", "submit", "--prompts-file", "p.jsonl", "--param", "max_tokens=4"]
    flag = ["--webhook-secret", "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ1Ng=="]
    answer = run_cli(tmp_path, *args, *flag, env=secret, timeout=120)
    refused(answer, "--webhook-secret signs the notices to --webhook")
    assert answer.stderr.count("\n") == 1 and answer.stdout == ""
    listed = run_cli(tmp_path, "jobs", "list", timeout=120)
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stdout
    assert uploads(tmp_path / "textnlp-home") == []


def test_a_refused_submit_leaves_no_upload_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(PROMPTS)
    (tmp_path / "q.jsonl").write_text('{"prompt": "Say bye"}\n')
    args = ["jobs", "submit", "--idempotency-key", "run-7"]
    submitted(cli(tmp_path, *args, "--prompts-file", "p.jsonl"))
    kept = uploads(tmp_path / "textnlp-home")
    refused(cli(tmp_path, *args, "--prompts-file", "q.jsonl"), "different request")
    assert uploads(tmp_path / "textnlp-home") == kept  # q.jsonl's upload went with the refusal
    refused(cli(tmp_path, *args, "--prompts-file", "p.jsonl", "--seed", "3"), "different request")
    assert uploads(tmp_path / "textnlp-home") == kept  # p.jsonl's, the job's, stays


def test_uploads_are_listed_and_deleted_once_no_job_reads_them(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(PROMPTS)
    job = submitted(cli(tmp_path, "jobs", "submit", "--prompts-file", "p.jsonl"))
    listed: dict[str, Any] = submitted(cli(tmp_path, "jobs", "uploads"))
    (upload,) = listed["uploads"]
    assert upload["name"].endswith("-p.jsonl") and upload["key"].endswith(upload["name"])
    assert listed["used_bytes"] == upload["bytes"] == len(PROMPTS)
    refused(cli(tmp_path, "jobs", "delete-upload", upload["name"]), f"job {job['id']} reads")
    assert len(uploads(tmp_path / "textnlp-home")) == 1
    assert cli(tmp_path, "jobs", "cancel", str(job["id"])).returncode == 0
    deleted = cli(tmp_path, "jobs", "delete-upload", upload["name"])
    assert deleted.returncode == 0 and deleted.stderr == f"deleted upload {upload['name']}\n"
    assert uploads(tmp_path / "textnlp-home") == []
    refused(cli(tmp_path, "jobs", "delete-upload", upload["name"]), "no upload")


def test_prompt_file_that_is_a_directory_or_unreadable(tmp_path: Path) -> None:
    (tmp_path / "somedir").mkdir()
    refused(cli(tmp_path, "jobs", "submit", "--prompts-file", "somedir/"), "is a directory")
    refused(cli(tmp_path, "jobs", "submit", "--prompts-file", "gone.jsonl"), "does not exist")
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.jsonl"
        locked.write_text(PROMPTS)
        locked.chmod(0o000)
        refused(cli(tmp_path, "jobs", "submit", "--prompts-file", str(locked)), "cannot read")


def test_a_jobs_records_come_from_one_source_said_in_the_options_names(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(PROMPTS)
    for args, message in (
        ([], "give exactly one of -t/--template (with -n), --prompt, --prompts-file"),
        (["-t", "news-headline", "--prompt", "Hi"], "give exactly one of"),
        (["-t", "news-headline"], "a template job needs -n/--count"),
        (["--prompt", "Say hi.", "-n", "5"], "-n/--count applies to -t/--template"),
        (["--prompts-file", "p.jsonl", "-n", "5"], "-n/--count applies to -t/--template"),
    ):
        refused(cli(tmp_path, "jobs", "submit", *args), message)
    assert uploads(tmp_path / "textnlp-home") == []  # refused before the file was uploaded


def test_what_is_no_job_id_names_no_job(tmp_path: Path) -> None:
    job = submitted(cli(tmp_path, "jobs", "submit", "--prompt", "Say hi"))
    for command in ["status", "cancel"]:
        for hostile in [f"zzz/../{job['id']}", f"{job['id']}/results", "nope"]:
            refused(cli(tmp_path, "jobs", command, hostile), "not a job id")
    status = submitted(cli(tmp_path, "jobs", "status", str(job["id"])))
    assert status["state"] == "queued"  # the hostile cancels touched nothing
    shouted = submitted(cli(tmp_path, "jobs", "status", str(job["id"]).upper()))  # "not a job id"
    assert shouted["id"] == job["id"]


def test_refused_results_leave_no_directory(tmp_path: Path) -> None:
    small = ["--param", "max_tokens=4"]  # the embedded model, briefly
    done = submitted(cli(tmp_path, "jobs", "submit", "--prompt", "Say hi", *small))
    cancelled = submitted(cli(tmp_path, "jobs", "submit", "--prompt", "Bye", *small))
    assert cli(tmp_path, "jobs", "cancel", str(cancelled["id"])).returncode == 0
    assert cli(tmp_path, "worker", "--once", "--wait", "0.3").returncode == 0
    for job_id, out, message in [
        ("nope", "refused1/sub/x.jsonl", "not a job id"),
        (str(cancelled["id"]), "refused2/sub/x.jsonl", "cancelled"),
        (str(done["id"]), "refused3/sub/x.csv", "save it to a .jsonl path"),
    ]:
        refused(cli(tmp_path, "jobs", "results", job_id, "-o", out), message)
        assert not (tmp_path / out.split("/")[0]).exists(), out
    (tmp_path / "kept").mkdir()
    refused(cli(tmp_path, "jobs", "results", "nope", "-o", "kept/new/x.jsonl"), "not a job id")
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []
    saved = cli(tmp_path, "jobs", "results", str(done["id"]), "-o", "made/sub/r.jsonl")
    assert saved.returncode == 0 and (tmp_path / "made" / "sub" / "r.jsonl").is_file()


# -- against textnlp serve (--api) ----------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("jobs-api-cli")
    env = {"TEXTNLP_API__MAX_BODY_BYTES": "4096"}  # a small bound: a small file is over it
    with serve(root, users=[ServeUser("dora", "dora-password-123")], env=env) as api:
        yield api


@pytest.fixture(scope="module")
def api_args(served: Served) -> list[str]:
    return ["--api", served.url, "--token", served.api_key("dora")]


def api_cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return served.cli(*args, timeout=120)


def test_a_retried_api_submit_with_a_prompt_file_gets_its_job(
    served: Served, api_args: list[str]
) -> None:
    (served.root / "p.jsonl").write_text(PROMPTS)
    args = ["jobs", "submit", "--prompts-file", "p.jsonl", "--idempotency-key", "retry-78",
            "--param", "max_tokens=4", *api_args]  # fmt: skip
    before = len(uploads(served.home))
    first = submitted(api_cli(served, *args))
    assert submitted(api_cli(served, *args))["id"] == first["id"]
    assert len(uploads(served.home)) == before + 1


def test_any_file_name_uploads_through_the_api(served: Served, api_args: list[str]) -> None:
    names = served.root / "names"
    names.mkdir()
    for name in NAMES:
        (names / name).write_text(PROMPTS)
        args = ["jobs", "submit", "--prompts-file", f"names/{name}", "--param", "max_tokens=4"]
        job = submitted(api_cli(served, *args, *api_args))
        assert job["progress"] == {"done": 0, "total": 1, "failed": 0}, name
    stored = {path.name.split("-", 1)[1] for path in uploads(served.home)}
    assert {"a=23b.jsonl", "a=3Fb.jsonl", "x=252Fy.jsonl", "caf=C3=A9.jsonl"} <= stored


def test_job_ids_are_checked_before_the_api_is_asked(served: Served, api_args: list[str]) -> None:
    (served.root / "q.jsonl").write_text(PROMPTS)
    job = submitted(api_cli(served, "jobs", "submit", "--prompts-file", "q.jsonl", *api_args))
    for hostile in [f"{job['id']}/results", f"zzz/../{job['id']}", f"{job['id']}#x"]:
        refused(api_cli(served, "jobs", "status", hostile, *api_args), "not a job id")
        refused(api_cli(served, "jobs", "cancel", hostile, *api_args), "not a job id")
    assert (
        submitted(api_cli(served, "jobs", "status", str(job["id"]), *api_args))["id"] == (job["id"])
    )


def test_api_results_refused_leave_no_directory(served: Served, api_args: list[str]) -> None:
    (served.root / "r.jsonl").write_text(PROMPTS)
    job = submitted(api_cli(served, "jobs", "submit", "--prompts-file", "r.jsonl", *api_args))
    assert api_cli(served, "jobs", "cancel", str(job["id"]), *api_args).returncode == 0
    for job_id, message in [("nope", "not a job id"), (str(job["id"]), "cancelled")]:
        answer = api_cli(served, "jobs", "results", job_id, "-o", "refused/sub/x.jsonl", *api_args)
        refused(answer, message)
        assert not (served.root / "refused").exists()


def test_a_prompt_file_over_the_api_bound_says_so(served: Served, api_args: list[str]) -> None:
    (served.root / "big.jsonl").write_text(PROMPTS * 400)  # 8400 bytes, over 4096
    answer = api_cli(served, "jobs", "submit", "--prompts-file", "big.jsonl", *api_args)
    refused(answer, "prompt file big.jsonl (8400 bytes) is larger than the API takes")
    assert "4096 bytes" in answer.stderr and "TEXTNLP_API__MAX_BODY_BYTES" in answer.stderr
