"""``textnlp generate``: a dataset from a template or a recipe, with progress and a summary.

For a recipe, ``--count N`` means N records that pass every filter: candidates are made
until N pass or ``--max-candidates`` (default 4 per record asked) have been tried; the
rejected ones are counted per filter in the summary and written to ``--rejects`` if given.

``--max-cost USD`` caps what the run may spend on priced models: the run stops before the cap
would be exceeded, keeps the finished records in a valid file (``--resume`` continues), and
exits 2 with one line on stderr.

One run at a time writes an output: a second run on it is refused (exit 2) while the first
holds its lock. Ctrl-C says where the finished records are (the output, or the run journal
when the output is an earlier run's, which only a completed run replaces, or could not be
written in time), or that nothing was finished and the output is unchanged; a run without
``--resume`` over an interrupted run's journal warns that it discards it.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from textnlp.bootstrap import Platform
from textnlp.cli.common import console, dollars, err_console, parse_assignments, platform, settings
from textnlp.cli.interrupt import ignore_further_interrupts, run_interruptible
from textnlp.domain import Record
from textnlp.errors import CandidatesExhausted, QuotaExceeded, TextNLPError
from textnlp.extras import require_extra
from textnlp.generation.journal import journal_path
from textnlp.generation.pipeline import DatasetSummary
from textnlp.generation.sinks import DiscardedProgress
from textnlp.generation.writers import output_path
from textnlp.services.generation import DatasetJob, check_count

if TYPE_CHECKING:
    from textnlp.validation.models import DatasetReport


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


def generate(
    template: str = typer.Option(
        ..., "--template", "--recipe", "-t", "-r", help="Template or recipe: id or YAML file."
    ),
    count: int = typer.Option(..., "--count", "-n", help="Number of records."),
    out: str = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output: .jsonl, .csv, .parquet, or a directory (DIR/) for datasets.load_dataset.",
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model id (`models list`)."),
    var: list[str] | None = typer.Option(
        None, "--var", metavar="NAME=VALUE", help="Fix a variable (repeatable)."
    ),
    seed: int = typer.Option(0, help="Run seed; the same seed reproduces the same dataset."),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", help="Most tokens per record (default: the template's)."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", help="Sampling temperature, 0 to 2 (default: the template's)."
    ),
    top_p: float | None = typer.Option(
        None, "--top-p", help="Nucleus sampling mass, 0 to 1 (default: the template's)."
    ),
    stop: list[str] | None = typer.Option(
        None, "--stop", metavar="TEXT", help="Stop sequence (repeatable)."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", min=1, max=1024, help="Requests in flight at once."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse cached responses."),
    validate: bool = typer.Option(False, "--validate", help="Validate the dataset afterwards."),
    max_cost: float | None = typer.Option(
        None,
        "--max-cost",
        callback=dollars,
        metavar="USD",
        help="Spending cap of this run in US dollars (priced models only).",
    ),
    max_candidates: int | None = typer.Option(
        None, "--max-candidates", min=1, help="A recipe run's most candidates (default 4 x count)."
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Write a recipe run's rejected candidates here, with reasons."
    ),
) -> None:
    """Generate a dataset from a prompt template or a recipe."""
    output = output_path(out)
    if validate:  # before the run, not after it
        from textnlp.cli.validate import check_report_path, report_beside

        require_extra("validation", "--validate")
        check_report_path(report_beside(output))
    params: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "stop": stop or None,
    }
    job = DatasetJob(
        template=template,
        count=count,
        output=output,
        model=model,
        params={k: v for k, v in params.items() if v is not None},
        variables=parse_assignments(var),
        seed=seed,
        concurrency=concurrency,
        resume=resume,
        max_cost_usd=max_cost,
        max_candidates=max_candidates,
        rejects=rejects,
    )
    with _warnings_as_lines():
        summary = run_interruptible(_generate(job, use_cache=cache))
    print_summary(summary)
    _say_why_records_failed(summary)
    if validate:
        report = _validate(job, output, summary)
        # An export directory's card records the release gate it passed (or failed).
        platform().generation.write_card(job, summary, gate=report.gate.model_dump(mode="json"))
        if not report.passed:
            raise typer.Exit(1)


def _say_why_records_failed(summary: DatasetSummary) -> None:
    """A template run's failed records, with the first one's reason (a failed record is in no
    file): a warning, or the run's failure when none was written (exit 1, as a job's)."""
    summary.check_written()
    if summary.first_failure is None or summary.acceptance is not None:
        return  # a recipe's failed candidates: its acceptance rows and CandidatesExhausted
    index, reason = summary.first_failure
    first = f"the first, record {index}: {reason}"
    line = f"warning: {summary.failed} of {summary.requested} records failed; {first}"
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


async def _generate(job: DatasetJob, *, use_cache: bool) -> DatasetSummary:
    config = settings()
    check_count(job.count, config)  # before anything is built, loaded or written
    if not use_cache:
        config = config.model_copy(
            update={"generation": config.generation.model_copy(update={"response_cache": False})}
        )
    async with Platform(config) as platform:
        service = platform.generation
        model_id, request = service.dataset_request(job)
        before = _stamp(job.output)
        with _progress() as progress:
            task = progress.add_task(
                f"{request.template.id} on {model_id}", total=job.count, tokens_per_s=0.0
            )
            tracker = _Tracker(progress, task)
            status = err_console.status(f"loading {model_id}...")
            status.start()
            tracker.on_first = status.stop
            try:
                summary = await service.generate_dataset(job, on_record=tracker)
                progress.update(task, completed=summary.written)  # resumed records included
                return summary
            except (KeyboardInterrupt, asyncio.CancelledError):
                ignore_further_interrupts()  # what is kept is kept: say where, whole
                message = _interrupted(job, before, finished=tracker.finished)
                err_console.print(message, markup=False, highlight=False, soft_wrap=True)
                raise
            except QuotaExceeded as exc:
                # One line on stderr: the bar goes away, the message says what was kept.
                progress.live.transient = True
                written = exc.details.get("written", 0)
                kept = f"{written} of {job.count} records written to {job.output}"
                if _stamp(job.output) == before:  # nothing was (re)written: none, or the
                    # output is another run's, which only a completed run replaces
                    kept = f"{job.output} {'is unchanged' if before else 'was not written'}"
                    journal = journal_path(job.output) if job.output is not None else None
                    if written and journal is not None and journal.is_file():
                        kept = f"{written} finished records are in {journal} ({kept})"
                again = "run again with --resume"
                if isinstance(exc, CandidatesExhausted):  # the same budget would stop at once
                    again += f" and a --max-candidates above {exc.details['max_candidates']}"
                raise exc.__class__(
                    f"{exc.message}; {kept} ({again} to continue)", **exc.details
                ) from None
            except TextNLPError:
                progress.live.transient = True  # the error is the one line on stderr
                raise
            finally:
                status.stop()


def _stamp(path: Path | None) -> tuple[int, int] | None:
    """What tells a rewritten output from the old one: files and export directories are
    replaced whole (``writers``), so a new inode."""
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_mtime_ns)


def _interrupted(job: DatasetJob, before: tuple[int, int] | None, *, finished: int) -> str:
    """Where Ctrl-C left the records: what exists, not what the run meant to write."""
    out = job.output
    assert out is not None  # the CLI always names an output
    if _stamp(out) != before:
        return f"interrupted: finished records are in {out}; run again with --resume to continue"
    journal = journal_path(out)
    kept = (finished or job.resume) and journal.is_file() and journal.stat().st_size > 0
    state = f"{out} is unchanged" if before is not None else f"{out} was not written"
    if kept:  # the output was not (re)written in time: the journal holds the progress
        return (
            f"interrupted: finished records are in {journal} ({state}); "
            "run again with --resume to continue"
        )
    return f"interrupted before any record was finished; {state}"


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """A warning of the run (an interrupted run's progress discarded) as one stderr line."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        if isinstance(message, DiscardedProgress):
            text = (
                f"discarding {message.count} unfinished records of an earlier run of "
                f"{message.output}; use --resume to keep them"
            )
        else:
            text = str(message)
        err_console.print(f"warning: {text}", markup=False, highlight=False, soft_wrap=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", DiscardedProgress)
        warnings.showwarning = show
        yield


class _Tracker:
    """Feeds the progress bar: records, completion tokens/s, ETA."""

    def __init__(self, progress: Progress, task: Any) -> None:
        self.progress = progress
        self.task = task
        self.tokens = 0
        self.started = time.perf_counter()
        self.on_first: Any = None
        #: Records (a recipe's: candidates) this run finished: in the journal now.
        self.finished = 0

    def __call__(self, record: Record) -> None:
        self.finished += 1
        if self.on_first is not None:  # the model is loaded: the clock starts
            self.on_first()
            self.on_first = None
            self.started = time.perf_counter()
        elif not record.provenance.cached:  # tokens made since the first record, not read back
            self.tokens += record.provenance.completion_tokens
        # A recipe's rejected or failed candidate is not one of the records asked for.
        recipe_miss = record.provenance.cells is not None and record.status != "ok"
        elapsed = time.perf_counter() - self.started
        # A batch's records finish together: a rate over less than a second would be noise.
        rate = self.tokens / elapsed if elapsed >= 1.0 else 0.0
        self.progress.update(self.task, advance=0 if recipe_miss else 1, tokens_per_s=rate)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} records"),
        TextColumn("{task.fields[tokens_per_s]:.1f} tok/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        # Only on a terminal: redirected, a bar is noise and its last frame a stray line
        # before an error's one line.
        disable=not err_console.is_terminal,
    )


def print_summary(summary: DatasetSummary) -> None:
    table = Table(title="Generation summary", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    rows = [
        ("output", str(summary.output)),
        ("template / model", f"{summary.template} / {summary.model}"),
        ("records written", f"{summary.written} of {summary.requested}"),
        ("failed (invalid output)", str(summary.failed)),
        ("resumed / from cache", f"{summary.resumed} / {summary.cached}"),
        ("tokens (prompt / completion)", f"{summary.prompt_tokens} / {summary.completion_tokens}"),
    ]
    if summary.cost_usd is not None:
        rows.append(("estimated cost", f"${summary.cost_usd:.4f}"))
    rows.append(
        ("time", f"{summary.elapsed_s:.1f} s ({summary.tokens_per_s:.1f} completion tok/s)")
    )
    if summary.acceptance is not None:
        rows.extend(acceptance_rows(summary.acceptance))
    for label, counts in summary.label_counts.items():
        rows.append((f"label {label}", ", ".join(f"{k}: {v}" for k, v in counts.items())))
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    if summary.written or summary.first_failure is None:  # else nothing was written
        console.print(f"dataset: [bold]{escape(str(summary.output))}[/]")


def acceptance_rows(acceptance: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (
            "candidates (accepted / rejected / failed)",
            f"{acceptance['candidates']} ({acceptance['accepted']} / "
            f"{sum(acceptance['rejected'].values())} / {acceptance['failed']})",
        ),
        ("acceptance rate", f"{acceptance['acceptance_rate']:.1%}"),
    ]
    for name, rate in acceptance["pass_rate_per_filter"].items():
        rejected = acceptance["rejected"].get(name, 0)
        rows.append((f"filter {name}", f"{rate:.1%} pass ({rejected} rejected)"))
    return rows


def _validate(job: DatasetJob, path: Path, summary: DatasetSummary) -> DatasetReport:
    """The fresh dataset validated; its JSON checked against the schema of the template that
    ran (not a catalogue template that shares its id), its failed records counted as missing."""
    from textnlp.cli.validate import validate_after_generate
    from textnlp.generation.templates import PromptTemplate

    source = (
        platform().templates.source(job.template, paths=True)
        if isinstance(job.template, str)
        else job.template
    )
    schema: dict[str, Any] | Literal[False] = False
    if isinstance(source, PromptTemplate) and source.output.type == "json":
        schema = dict(source.output.json_schema or {})
    return validate_after_generate(
        path,
        generation=summary.acceptance,
        fail_on_gate=False,
        json_schema=schema,
        requested=summary.requested,
    )
