"""``textnlp jobs submit|status|results|cancel|delete|list``: batch jobs, against the API or local.

With ``--api URL`` (or ``TEXTNLP_API_URL``) the commands call the REST API with ``--token``
(or ``TEXTNLP_API_TOKEN``); without it they work directly on the local database as the user
``local`` (the ``local`` profile), and a ``textnlp worker`` runs the jobs.

``delete`` removes an ended job with its records and files; it refuses a queued or running job
(cancel it first), where the API's ``DELETE`` would cancel it: a command named delete never
just stops a job. ``purge --older-than DAYS`` is the operator's retention, run like ``textnlp
users`` against the database of the settings: every job that ended more than DAYS days ago.

``--wait`` exits 1 when the job ended ``failed`` (its reason on stderr, after the job's JSON), as
``generate`` does when its run fails; a refused command exits 2 and writes nothing. While it
waits, stdout stays for the job's JSON at the end: ``submit --wait`` names the job on stderr as
soon as it is queued, progress goes to stderr (one line rewritten on a terminal, a line per
change elsewhere), and Ctrl-C stops the waiting, not the job: stderr says how to follow it, and
the command exits 130.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from textnlp.cli.common import (
    console,
    dollars,
    err_console,
    parse_assignments,
    platform,
    service_settings,
    settings,
)
from textnlp.cli.jobs_client import ApiJobs, JobsBackend, LocalJobs
from textnlp.domain.jobs import JOB_ID, TERMINAL_STATES
from textnlp.errors import Conflict, InvalidInput, NotFound, OutputError, TextNLPError, quoted
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


def _job_id(job_id: str) -> str:
    """A job id as the service makes them, checked before anything is asked or written: over
    the API, ``<id>/results`` or ``x/../<id>`` would be another route or another job."""
    if not JOB_ID.fullmatch(job_id.lower()):  # ids are lowercase; a copy may not be
        raise NotFound(f"no job {quoted(job_id)}: not a job id (32 hexadecimal characters)")
    return job_id.lower()


def _catalogue_id(template: str) -> str:
    """A job's template is a catalogue id (the worker or server reads no file of the user's):
    a file is told as such, not as an id that fails the id pattern."""
    if template.endswith((".yaml", ".yml")) or "/" in template:
        raise InvalidInput(
            f"a job takes the id of a catalogue template or recipe, not a file (got {template}): "
            "see `textnlp templates list` and `textnlp recipes list`"
        )
    return template


def _read_prompts(path: Path) -> bytes:
    if path.is_dir():
        raise InvalidInput(f"prompt file {path} is a directory")
    if not path.is_file():
        raise InvalidInput(f"prompt file {path} does not exist")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read prompt file {path}: {exc.strerror or exc}") from None


def _print_ended(job: dict[str, Any]) -> None:
    """The job as JSON; a failed one then fails the command (exit 1, as a failed ``generate``
    run), its reason on stderr."""
    _print(job)
    if job["state"] == "failed":
        raise TextNLPError(f"job {job['id']} failed: {job.get('error') or 'no reason given'}")


@jobs_app.command("submit")
def submit(
    ctx: typer.Context,
    template: str | None = typer.Option(
        None, "--template", "-t", help="A catalogue template or recipe id."
    ),
    count: int | None = typer.Option(None, "--count", "-n", help="Records to generate."),
    prompts_file: Path | None = typer.Option(
        None, "--prompts-file", help="Local JSONL/CSV of prompts (uploaded to storage)."
    ),
    prompt: list[str] | None = typer.Option(
        None, "--prompt", metavar="TEXT", help="A prompt (repeatable)."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model id (default: the catalogue's default)."
    ),
    var: list[str] | None = typer.Option(
        None, "--var", metavar="NAME=VALUE", help="Fix a variable (repeatable)."
    ),
    param: list[str] | None = typer.Option(
        None, "--param", metavar="NAME=VALUE", help="A sampling parameter, e.g. max_tokens=64."
    ),
    seed: int = typer.Option(0, "--seed", help="Run seed; the same seed, the same records."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl, csv or parquet."),
    webhook: str | None = typer.Option(None, "--webhook", help="URL told when the job ends."),
    webhook_secret: str | None = typer.Option(
        None,
        "--webhook-secret",
        envvar="TEXTNLP_WEBHOOK_SECRET",
        help="Sign the webhook's notices with this Standard Webhooks secret (whsec_...); "
        "the variable applies to jobs with a --webhook only.",
    ),
    idempotency_key: str | None = typer.Option(
        None, "--idempotency-key", help="Retrying with the same key returns the same job."
    ),
    max_cost: float | None = typer.Option(
        None,
        "--max-cost",
        callback=dollars,
        metavar="USD",
        help="Spending cap of the job in US dollars.",
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
    _one_source(template, count, prompt, prompts_file)
    if template is not None:
        _catalogue_id(template)
    # The variable is for jobs with a webhook, the other jobs need none; the flag given without
    # --webhook is a mistake said, whether or not the variable is set too (the option is
    # filled from either: its source tells them apart; typer's own click, so by name).
    source = ctx.get_parameter_source("webhook_secret")
    if source is not None and source.name == "COMMANDLINE" and not webhook:
        raise InvalidInput("--webhook-secret signs the notices to --webhook: give both")
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
            "webhook_secret": webhook_secret if webhook else None,
            "prompts": prompt or None,
            "max_cost_usd": max_cost,
            "provider_batch": provider_batch or None,
        }
        fresh_upload = None
        if prompts_file is not None:
            before = {u["key"] for u in backend.uploads()["uploads"]}
            key = backend.upload(prompts_file.name, _read_prompts(prompts_file))
            body["prompt_file"] = key
            fresh_upload = None if key in before else key.rsplit("/", 1)[-1]
        try:
            job = backend.submit(
                {k: v for k, v in body.items() if v not in (None, {})}, idempotency_key
            )
        except TextNLPError:
            if fresh_upload is not None:  # a refused command leaves nothing behind
                with contextlib.suppress(TextNLPError):  # the refusal is what to tell
                    backend.delete_upload(fresh_upload)
            raise
        if wait:
            print(f"job {job['id']} submitted", file=sys.stderr, flush=True)
            job = _wait(backend, job["id"])
        _print_ended(job)
    finally:
        backend.close()


def _one_source(
    template: str | None, count: int | None, prompt: list[str] | None, prompts_file: Path | None
) -> None:
    """The job's records come from one place, said in the options' names (the service's own
    words name the API's fields: ``prompt_file``)."""
    given = [template is not None, bool(prompt), prompts_file is not None]
    if sum(given) != 1:
        raise InvalidInput("give exactly one of -t/--template (with -n), --prompt, --prompts-file")
    if template is not None and count is None:
        raise InvalidInput("a template job needs -n/--count")
    if template is None and count is not None:
        raise InvalidInput("-n/--count applies to -t/--template: prompts give one record each")


def _wait(backend: JobsBackend, job_id: str, poll_s: float = 1.0) -> dict[str, Any]:
    """The job once it has ended, its progress on stderr meanwhile; Ctrl-C leaves it running."""
    progress = _Progress()
    try:
        while True:
            job = backend.status(job_id)
            if job["state"] in TERMINAL_STATES:
                progress.end()
                return job
            progress.show(job["state"], job["progress"]["done"], job["progress"]["total"])
            time.sleep(poll_s)
    except KeyboardInterrupt:
        progress.end()
        print(
            f"stopped waiting; job {job_id} goes on: follow it with "
            f"`textnlp jobs status {job_id}` (--wait to wait again)",
            file=sys.stderr,
        )
        raise typer.Exit(130) from None


class _Progress:
    """``state: done/total`` on stderr: one line rewritten in place on a terminal; elsewhere (a
    log, a CI job) a line of its own, only when the state changes or, at most every
    ``every_s``, the count does, so that a long job does not fill the log."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.terminal = err_console.is_terminal
        self.every_s = every_s
        self.last: tuple[str, int] | None = None
        self.last_at = 0.0
        self.on_line = False  # a terminal line written with "\r" and not ended yet

    def show(self, state: str, done: int, total: int) -> None:
        text = f"{state}: {done}/{total}"
        if self.terminal:
            err_console.print(text, end="\r", markup=False, highlight=False)
            self.on_line = True
            return
        now, last = time.monotonic(), self.last
        due = now - self.last_at >= self.every_s
        if last is None or state != last[0] or (done != last[1] and due):
            print(text, file=sys.stderr, flush=True)
            self.last, self.last_at = (state, done), now

    def end(self) -> None:
        if self.on_line:
            err_console.print()  # what follows starts on a line of its own
            self.on_line = False


@jobs_app.command("status")
def status(
    job_id: str,
    wait: bool = typer.Option(False, "--wait", help="Wait until the job ends."),
    api: str | None = ApiOption,
    token: str | None = TokenOption,
) -> None:
    """State, progress, timings, error and result link of a job (--wait: exit 1 if it failed)."""
    job_id = _job_id(job_id)
    backend = _backend(api, token)
    try:
        if wait:
            _print_ended(_wait(backend, job_id))
        else:
            _print(backend.status(job_id))
    finally:
        backend.close()


@jobs_app.command("results")
def results(
    job_id: str,
    out: Path = typer.Option(..., "--out", "-o", help="Where to save the result file."),
    api: str | None = ApiOption,
    token: str | None = TokenOption,
) -> None:
    """Download an ended job's result file, to a path with its format's extension (a failed
    or cancelled job's: the records it kept, said on stderr)."""
    job_id = _job_id(job_id)
    backend = _backend(api, token)
    try:
        with _made_for(out):
            ensure_directory(out)  # as for generate: no directory tree from a mistyped path
            job = backend.status(job_id)
            result = job.get("result")
            if result is not None:  # none: the download refuses, saying why (cancelled...)
                check_result_path(out, job_id, result["format"])
            size = backend.download(job_id, out)
    finally:
        backend.close()
    if job["state"] != "succeeded":
        why = f": {job['error']}" if job.get("error") else ""
        _say(f"job {job_id} {job['state']}{why}; the file holds the records it kept")
    _say(f"saved {size} bytes to {out}")


def _say(text: str) -> None:
    """A line on stderr, as written (an error, a path: never read as markup)."""
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def _made_for(out: Path) -> Iterator[None]:
    """The directories made for ``out`` are removed again if the download is refused or fails
    (only empty ones): a refused command leaves nothing behind."""
    parent = out.parent
    missing = [d for d in (parent, *parent.parents) if not d.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for directory in missing:
            with suppress(OSError):
                directory.rmdir()
        raise


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
    job_id = _job_id(job_id)
    backend = _backend(api, token)
    try:
        _print(backend.cancel(job_id))
    finally:
        backend.close()


@jobs_app.command("delete")
def delete(job_id: str, api: str | None = ApiOption, token: str | None = TokenOption) -> None:
    """Delete an ended job with its records and files (refused while it runs: cancel first).

    Its records, result files and validation report go; its prompt upload stays."""
    job_id = _job_id(job_id)
    backend = _backend(api, token)
    try:
        state = backend.status(job_id)["state"]
        if state not in TERMINAL_STATES:
            raise Conflict(
                f"job {job_id} is {state}: cancel it first (`textnlp jobs cancel {job_id}`), "
                "then delete it"
            )
        backend.delete(job_id)
    finally:
        backend.close()
    print(f"deleted job {job_id}", file=sys.stderr)


@jobs_app.command("purge")
def purge(
    older_than: int = typer.Option(
        ...,
        "--older-than",
        min=1,
        max=36500,  # a century: what a date can go back by (no OverflowError)
        metavar="DAYS",
        help="Delete the jobs that ended more than DAYS days ago (a positive integer).",
    ),
) -> None:
    """Operators: delete the jobs that ended more than DAYS days ago, with their files.

    Runs against the database and storage of the settings, as `textnlp users` does, in
    batches of jobs; queued and running jobs stay."""
    with platform(service_settings()) as parts:
        removed = parts.jobs.purge(timedelta(days=older_than))
        parts.metrics.observe_purge(removed)
    print(f"purged {removed} job{'' if removed == 1 else 's'} ended over {older_than} days ago")


@jobs_app.command("list")
def list_jobs(api: str | None = ApiOption, token: str | None = TokenOption) -> None:
    """Your latest jobs (with --api); without it, every job of the local database."""
    backend = _backend(api, token)
    try:
        _print(backend.list())
    finally:
        backend.close()


@jobs_app.command("uploads")
def uploads(api: str | None = ApiOption, token: str | None = TokenOption) -> None:
    """Your uploaded prompt files, and how much of your upload quota they take."""
    backend = _backend(api, token)
    try:
        _print(backend.uploads())
    finally:
        backend.close()


@jobs_app.command("delete-upload")
def delete_upload(
    name: str = typer.Argument(..., help="The file's name, as `jobs uploads` lists it."),
    api: str | None = ApiOption,
    token: str | None = TokenOption,
) -> None:
    """Delete an uploaded prompt file (refused while a job that reads it has not finished)."""
    backend = _backend(api, token)
    try:
        backend.delete_upload(name)
    finally:
        backend.close()
    print(f"deleted upload {name}", file=sys.stderr)
