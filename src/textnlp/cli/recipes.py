"""``textnlp recipes list|show|validate`` and ``textnlp preview``.

Recipes and templates are listed together: a template is a recipe of one llm column (its
variables are the samplers). ``validate`` makes every check a run makes before its first
model call (the DAG, seed files, each llm column's model and parameters); ``preview`` makes a
few records, writes nothing, and shows every column of each, rejected candidates included,
so a recipe can be iterated on in seconds.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from textnlp.bootstrap import Platform
from textnlp.cli.common import (
    console,
    err_console,
    parse_assignments,
    platform,
    print_yaml,
    settings,
)
from textnlp.cli.interrupt import ignore_further_interrupts, run_interruptible
from textnlp.domain import Record
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.recipes.columns import as_text
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.templates import PromptTemplate
from textnlp.services.generation import DatasetJob

recipes_app = typer.Typer(help="Dataset recipes (templates included).", no_args_is_help=True)

#: Longest value shown in a preview cell (the record itself keeps everything).
PREVIEW_CHARS = 400


def register(app: typer.Typer) -> None:
    app.add_typer(recipes_app, name="recipes")
    app.command("preview")(preview)


def _kind(column: Any) -> str:
    kind = str(getattr(column, "type", "?"))
    return f"filter:{column.rule}" if kind == "filter" else kind


def _row(source: PromptTemplate | Recipe) -> dict[str, Any]:
    if isinstance(source, Recipe):
        return {
            "id": source.id,
            "kind": "recipe",
            "version": source.version,
            "columns": [f"{name} ({_kind(c)})" for name, c in source.columns.items()],
            "description": source.description,
        }
    return {
        "id": source.id,
        "kind": "template",
        "version": source.version,
        "columns": [*source.variables, f"text (llm-{source.output.type})"],
        "description": source.description,
    }


@recipes_app.command("list")
def list_recipes(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array (for scripts)."),
) -> None:
    """Built-in and user recipes and templates."""
    library = platform().templates
    sources: list[PromptTemplate | Recipe] = [*library.recipes(), *library.all()]
    rows = [_row(s) for s in sources]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="Recipes and templates")
    width = max((len(r["id"]) for r in rows), default=2)
    table.add_column("id", no_wrap=True, min_width=width)
    for heading in ("kind", "version", "columns", "description"):
        table.add_column(heading, overflow="fold")
    for row in rows:
        cells = (row["id"], row["kind"], row["version"], ", ".join(row["columns"]))
        # A user's file writes these (a description with "[/]"): text, never Rich markup.
        table.add_row(*(Text(cell) for cell in (*cells, row["description"])))
    console.print(table)


@recipes_app.command("show")
def show_recipe(
    name: str = typer.Argument(..., help="Recipe or template: id or YAML file."),
) -> None:
    """A recipe's definition and its columns in the order they are computed."""
    source = platform().templates.source(name, paths=True)
    definition = source.model_dump(mode="json", by_alias=True, exclude_none=True)
    definition.pop("source", None)
    print_yaml(definition)
    if isinstance(source, Recipe):
        graph = source.graph()
        table = Table(title="columns, in order")
        for heading in ("column", "kind", "reads"):
            table.add_column(heading)
        for name_ in source.order():
            reads = ", ".join(sorted(graph[name_])) or "-"
            table.add_row(name_, _kind(source.columns[name_]), reads)
        console.print(table)
        console.print(f"output column: [bold]{source.output_column()}[/]")


@recipes_app.command("validate")
def validate_recipe(
    name: str = typer.Argument(..., help="Recipe or template: id or YAML file."),
    model: str | None = typer.Option(None, "--model", "-m", help="The run's model."),
) -> None:
    """Every check a run makes before its first model call; exit 2 with the problem."""
    config = settings()
    source = platform().templates.source(name, paths=True)
    catalogue = platform().catalogue
    spec = catalogue.get(model or config.default_model)
    request = DatasetRequest(template=source, count=1)
    DatasetPipeline.resolve(spec, request, catalogue.get)
    if isinstance(source, Recipe):
        models = sorted(set(source.llm_models(spec.id).values()))
        console.print(
            f"recipe {source.id!r} is valid: {len(source.columns)} columns "
            f"({' -> '.join(source.order())}); filters: {', '.join(source.filters()) or 'none'}; "
            f"models: {', '.join(models)}"
        )
    else:
        console.print(f"template {source.id!r} is valid (variables: {', '.join(source.variables)})")


def preview(
    name: str = typer.Argument(..., help="Recipe or template: id or YAML file."),
    count: int = typer.Option(5, "--count", "-n", min=1, max=50, help="Records to make."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model id (`models list`)."),
    seed: int = typer.Option(0, help="Run seed (the same seed, the same records)."),
    var: list[str] | None = typer.Option(
        None, "--var", metavar="NAME=VALUE", help="Fix a column (repeatable)."
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse cached responses."),
) -> None:
    """Make a few records and show every column; nothing is written."""
    job = DatasetJob(
        template=name,
        count=count,
        output=None,
        model=model,
        variables=parse_assignments(var),
        seed=seed,
    )
    try:
        records = run_interruptible(_preview(job, use_cache=cache))
    except KeyboardInterrupt:
        ignore_further_interrupts()
        err_console.print("interrupted; nothing was written", highlight=False)
        raise typer.Exit(130) from None
    for record in records:
        console.print(_record_table(record))
    passed = sum(r.status == "ok" for r in records)
    console.print(f"{passed} of {len(records)} candidates passed; nothing was written")


async def _preview(job: DatasetJob, *, use_cache: bool) -> list[Record]:
    config = settings()
    if not use_cache:
        generation = config.generation.model_copy(update={"response_cache": False})
        config = config.model_copy(update={"generation": generation})
    async with Platform(config) as platform_:
        with console.status("generating..."):
            return await platform_.generation.preview(job)


def _record_table(record: Record) -> Table:
    status = {"ok": "[green]ok[/]", "rejected": "[yellow]rejected[/]"}.get(
        record.status, "[red]failed[/]"
    )
    title = f"record {record.index}: {status}"
    if record.error:
        title += f" ({escape(record.error)})"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("column", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    values = {**record.variables, **(record.data or {})}
    if record.provenance.cells is None:  # a template's record: its text is its one llm cell
        values["text"] = record.text
    for name, value in values.items():
        text = as_text(value)
        if len(text) > PREVIEW_CHARS:
            text = text[:PREVIEW_CHARS] + "..."
        table.add_row(Text(name), Text(text))  # generated text is never read as markup
    cells = record.provenance.cells or {}
    spent = ", ".join(
        f"{name}: {c.completion_tokens} tok{' (cached)' if c.cached else ''}"
        for name, c in cells.items()
    )
    if spent:
        table.add_row("[dim]tokens[/]", f"[dim]{spent}[/]")
    return table
