"""``textnlp jobs submit|status|results|cancel|list``: batch jobs, against the API or local.

With ``--api URL`` (or ``TEXTNLP_API_URL``) the commands call the REST API with ``--token``
(or ``TEXTNLP_API_TOKEN``); without it they work directly on the local database as the user
``local`` (the ``local`` profile), and a ``textnlp worker`` runs the jobs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from textnlp.cli.common import console, err_console, parse_assignments, settings
from textnlp.cli.jobs_client import ApiJobs, JobsBackend, LocalJobs
from textnlp.errors import InvalidInput, OutputError
from textnlp.generation.writers import check_writable, ensure_directory

jobs_app = typer.Typer(help="Submit and follow batch jobs.", no_args_is_help=True)

ApiOption = typer.Option(None, "--api", envvar="TEXTNLP_API_URL", help="API base URL.")
TokenOption = typer.Option(None, "--token", envvar="TEXTNLP_API_TOKEN", help="Bearer token.")


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")


def _backend(api: str | None, token: str | None) -> JobsBackend:
    if api:
        return ApiJobs(api, token)
    return LocalJobs(settings())


def _print(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


@jobs_app.command("submit")
def submit(
    template: str | None = typer.Option(None, "--template", "-t", help="Template id."),
    count: int | None = typer.Option(None, "--count", "-n"),
    prompts_file: Path | None = typer.Option(
        None, "--prompts-file", help="Local JSONL/CSV of prompts (uploaded to storage)."
    ),
    prompt: list[str] | None = typer.Option(None, "--prompt", help="A prompt (repeatable)."),
    model: str | None = typer.Option(None, "--model", "-m"),
    var: list[str] | None = typer.Option(None, "--var", help="Fix a variable: NAME=VALUE."),
    param: list[str] | None = typer.Option(None, "--param", help="NAME=VALUE, e.g. max_tokens=64."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl, csv or parquet."),
    webhook: str | None = typer.Option(None, "--webhook", help="URL told when the job ends."),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
    max_cost: float | None = typer.Option(
        None, "--max-cost", min=0.0, metavar="USD", help="Spending cap of the job in US dollars."
    ),
    provider_batch: bool = typer.Option(
        False,
        "--provider-batch",
        help="Send the requests through the provider's batch API (OpenAI, Anthropic, Bedrock, "
        "SageMaker batch transform) at its batch price; the job takes as long as the provider's "
        "batch (up to 24 h).",
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until the job ends."),
    api: str | None = ApiOption,
    token: str | None = TokenOption,
) -> None:
    """Submit a batch job; prints the job as JSON (with its cost_usd once it runs)."""
    backend = _backend(api, token)
    try:
        body: dict[str, Any] = {
            "template": template,
            "count": count,
            "model": model,
            "variables": parse_assignments(var),
            "params": parse_assignments(param, "--param"),
            "seed": seed,
            "format": fmt,
            "webhook_url": webhook,
            "prompts": prompt or None,
            "max_cost_usd": max_cost,
            "provider_batch": provider_batch or None,
        }
        if prompts_file is not None:
            if not prompts_file.is_file():
                raise InvalidInput(f"prompt file {prompts_file} does not exist")
            body["prompt_file"] = backend.upload(prompts_file.name, prompts_file.read_bytes())
        job = backend.submit(
            {k: v for k, v in body.items() if v not in (None, {})}, idempotency_key
        )
        if wait:
            job = _wait(backend, job["id"])
        _print(job)
    finally:
        backend.close()


def _wait(backend: JobsBackend, job_id: str, poll_s: float = 1.0) -> dict[str, Any]:
    while True:
        job = backend.status(job_id)
        if job["state"] in {"succeeded", "failed", "cancelled"}:
            return job
        progress = job["progress"]
        err_console.print(f"{job['state']}: {progress['done']}/{progress['total']}", end="\r")
        time.sleep(poll_s)


@jobs_app.command("status")
def status(
    job_id: str,
    wait: bool = typer.Option(False, "--wait", help="Wait until the job ends."),
    api: str | None = ApiOption,
    token: str | None = TokenOption,
) -> None:
    """State, progress, timings, error and result link of a job."""
    backend = _backend(api, token)
    try:
        _print(_wait(backend, job_id) if wait else backend.status(job_id))
    finally:
        backend.close()


@jobs_app.command("results")
def results(
    job_id: str,
    out: Path = typer.Option(..., "--out", "-o", help="Where to save the result file."),
    api: str | None = ApiOption,
    token: str | None = TokenOption,
) -> None:
    """Download a finished job's result file, to a path with its format's extension."""
    ensure_directory(out)  # as for generate: no directory tree from a mistyped path
    backend = _backend(api, token)
    try:
        result = backend.status(job_id).get("result")
        if result is not None:  # none: the download refuses, saying why (cancelled, running...)
            check_result_path(out, job_id, result["format"])
        size = backend.download(job_id, out)
    finally:
        backend.close()
    err_console.print(f"saved {size} bytes to {out}")


def check_result_path(out: Path, job_id: str, fmt: str) -> None:
    """Refuse, before the download, a path that cannot be written or whose extension is not
    the result's format (the file is saved as stored, never converted)."""
    if out.is_dir():
        raise OutputError(f"output path {out} is a directory")
    if out.suffix.lower() != f".{fmt}":
        raise OutputError(f"job {job_id}'s result is {fmt}: save it to a .{fmt} path (got {out})")
    check_writable(out)  # /proc, a read-only directory; no directory tree from a typo


@jobs_app.command("cancel")
def cancel(job_id: str, api: str | None = ApiOption, token: str | None = TokenOption) -> None:
    """Cancel a queued or running job."""
    backend = _backend(api, token)
    try:
        _print(backend.cancel(job_id))
    finally:
        backend.close()


@jobs_app.command("list")
def list_jobs(api: str | None = ApiOption, token: str | None = TokenOption) -> None:
    """Your latest jobs."""
    backend = _backend(api, token)
    try:
        _print(backend.list())
    finally:
        backend.close()
