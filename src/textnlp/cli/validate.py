"""``textnlp validate``: check a dataset, print a summary, write a report, judge the gate.

Exit codes: 0 the gate passes, 1 it fails, 2 bad input (raised as TextNLP errors and mapped by
the main entry point).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from textnlp.cli.common import settings
from textnlp.errors import OutputError
from textnlp.generation.writers import atomic_file, check_file_writable, same_file
from textnlp.validation.models import STATUS_STYLES, DatasetReport

REPORT_FORMATS = (".html", ".json")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def _jaccard(value: float) -> float:
    # typer's min/max are closed bounds; 0 and NaN are no threshold (datasketch takes (0, 1]).
    if not 0.0 < value <= 1.0:  # NaN fails every comparison
        raise typer.BadParameter(f"must be more than 0 and at most 1, got {value}")
    return value


def validate(
    dataset: Annotated[
        Path, typer.Argument(help="JSONL, CSV or Parquet dataset (or a .json array).")
    ],
    reference: Annotated[
        Path | None, typer.Option(help="Reference/seed dataset for the leakage check.")
    ] = None,
    gate: Annotated[Path | None, typer.Option(help="Release gate thresholds (YAML).")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the report: out.html or out.json.")
    ] = None,
    field: Annotated[
        str, typer.Option(help="Text field; dotted paths like data.answer work.")
    ] = "text",
    reference_field: Annotated[
        str | None,
        typer.Option(help="The reference's text field (default: the same as --field)."),
    ] = None,
    near_dup_threshold: Annotated[
        float,
        typer.Option(
            callback=_jaccard,
            help="Jaccard threshold of near duplicates, more than 0 and at most 1.",
        ),
    ] = 0.8,
    embeddings: Annotated[
        bool, typer.Option(help="Use the MiniLM model (semantic diversity, leakage).")
    ] = True,
) -> None:
    """Validate DATASET: quality, duplicates, PII, diversity, leakage; exit 1 if the gate fails."""
    from textnlp.generation.templates import TemplateLibrary
    from textnlp.validation.report import validate_dataset

    if report is not None:
        check_report_path(report)
        check_not_an_input(report, dataset=dataset, reference=reference, gate=gate)
    result = validate_dataset(
        dataset,
        field=field,
        reference=reference,
        reference_field=reference_field,
        gate=gate,
        near_dup_threshold=near_dup_threshold,
        embeddings=embeddings,
        templates=TemplateLibrary.load(settings().user_templates_dir),  # as `templates list`
    )
    console = Console()
    console.print(summarise_for_cli(result))
    if report is not None:
        write_report(result, report)
        console.print(f"report: [bold]{escape(str(report))}[/]")
    if not result.passed:
        raise typer.Exit(1)


def summarise_for_cli(report: DatasetReport) -> Table:
    """A rich table of the report's headline metrics and gate verdicts."""
    table = Table(title=f"Validation of {report.source}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("gate")
    for metric, value, status in report.summary_rows():
        style = STATUS_STYLES.get(status, "")
        table.add_row(metric, value, f"[{style}]{status}[/]" if style else status)
    return table


def check_report_path(path: Path) -> None:
    if path.suffix.lower() not in REPORT_FORMATS:
        raise OutputError(
            f"unknown report format {path.suffix or '(no extension)'!r} for {path}; "
            "use .html or .json"
        )
    check_file_writable(path, "report")


def check_not_an_input(report: Path, **inputs: Path | None) -> None:
    """Refuse a report path that is a file the command reads (``--report ds.json`` would replace
    the dataset with its own report). Files a directory dataset reads count; the directory
    itself does not."""
    from textnlp.validation.loader import files_read

    if not report.exists():
        return  # a new file is none of the inputs
    for noun, source in inputs.items():
        if source is None or not source.exists():
            continue
        for read in files_read(source):
            if same_file(report, read):
                what = f"the {noun} itself" if read == source else f"a file of the {noun} {source}"
                raise OutputError(f"report {report} is {what}; choose another report path")


def write_report(report: DatasetReport, path: Path) -> None:
    """The report as JSON or self-contained HTML, chosen by ``path``'s extension."""
    check_report_path(path)
    if path.suffix.lower() == ".json":
        content = report.model_dump_json(indent=2)
    else:
        from textnlp.validation.html import render_html

        content = render_html(report)
    with atomic_file(path) as handle:  # an old report stays whole if this fails
        handle.write(content)


def report_beside(dataset: Path) -> Path:
    """Where ``generate --validate`` writes a dataset's report: ``<dataset>.report.html``."""
    return dataset.with_name(dataset.stem + ".report.html")


def validate_after_generate(
    dataset: Path,
    *,
    fail_on_gate: bool = True,
    generation: dict[str, Any] | None = None,
    json_schema: dict[str, Any] | Literal[False] = False,
    requested: int | None = None,
) -> DatasetReport:
    """For ``textnlp generate --validate`` and ``make run``: validate the fresh dataset, print the
    summary and write ``<dataset>.report.html`` beside it; exit 1 when the gate fails.
    ``generation``: a recipe run's acceptance figures, shown in the report; ``json_schema``: the
    run's template's (False: its output is not JSON); ``requested``: the run's records."""
    from textnlp.validation.report import validate_dataset

    result = validate_dataset(dataset, json_schema=json_schema, requested=requested)
    result.generation = generation
    html_path = report_beside(dataset)
    write_report(result, html_path)
    console = Console()
    console.print(summarise_for_cli(result))
    console.print(f"validation report: [bold]{escape(str(html_path))}[/]")
    if fail_on_gate and not result.passed:
        raise typer.Exit(1)
    return result
