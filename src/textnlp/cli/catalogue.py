"""``textnlp templates list|show`` and ``textnlp models list``.

The lists are tables for people and, with ``--json``, one JSON array for scripts. An id is
never cut short in a table (a narrow terminal or a pipe wraps the other columns instead), so
it can always be copied.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from textnlp.cli.common import console, platform, print_yaml
from textnlp.errors import TemplateError
from textnlp.generation.templates import PromptTemplate

templates_app = typer.Typer(help="Prompt templates.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalogue.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(templates_app, name="templates")
    app.add_typer(models_app, name="models")


JsonOption = typer.Option(False, "--json", help="Print one JSON array (for scripts).")


def _print_rows(title: str, rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """``rows`` as a table of ``columns`` (key -> heading); the first column is the id. A cell
    that is already a ``Text`` keeps its styles; any other is plain text."""
    table = Table(title=title)
    width = max((len(str(row[next(iter(columns))])) for row in rows), default=2)
    for index, heading in enumerate(columns.values()):
        if index == 0:
            table.add_column(heading, no_wrap=True, min_width=width)
        else:
            table.add_column(heading, overflow="fold")
    for row in rows:
        # A user's file writes these (a description with "[/]"): text, never Rich markup.
        table.add_row(*(_cell(row[key]) for key in columns))
    console.print(table)


def _cell(value: Any) -> Text:
    return value if isinstance(value, Text) else Text(str(value))


@templates_app.command("list")
def list_templates(as_json: bool = JsonOption) -> None:
    """Built-in and user templates."""
    rows = [
        {
            "id": template.id,
            "version": template.version,
            "output": template.output.type,
            "variables": list(template.variables),
            "description": template.description,
        }
        for template in platform().templates.all()
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        row["variables"] = ", ".join(row["variables"])
    _print_rows("Templates", rows, {k: k for k in rows[0]} if rows else {"id": "id"})


@templates_app.command("show")
def show_template(
    template_id: str = typer.Argument(..., help="Template id or path to a YAML file."),
    seed: int = typer.Option(0, help="Seed of the sample prompt."),
    index: int = typer.Option(0, min=0, help="Record index of the sample prompt."),
) -> None:
    """A template's definition and one rendered sample prompt."""
    found = platform().templates.source(template_id, paths=True)
    if not isinstance(found, PromptTemplate):  # a recipe's columns have no one prompt to show
        raise TemplateError(
            f"{template_id} is a recipe, not a template: show it with "
            f"`textnlp recipes show {template_id}`"
        )
    template = found
    definition = template.model_dump(mode="json", by_alias=True, exclude_none=True)
    definition.pop("source", None)
    variables = template.sample_variables(seed, index)
    system, user = template.render(variables)  # before anything is printed: it may fail
    print_yaml(definition)
    console.rule(f"sample prompt (seed {seed}, record {index})")
    shown = [("variables", str(variables)), ("system", system), ("user", user)]
    for name, value in shown:
        if value:  # the template's own text: never read as markup
            console.print(Text.assemble((name, "bold"), ": ", value))


@models_app.command("list")
def list_models(as_json: bool = JsonOption) -> None:
    """Every model of the catalogue and whether it can run here (a remote one: whether its API
    key or credentials are found)."""
    with platform() as p:
        infos = p.pool.describe_all()
    if as_json:
        print(json.dumps([info.model_dump(mode="json") for info in infos], ensure_ascii=False))
        return
    rows = [
        {
            "id": info.id,
            "backend": info.backend,
            "context": info.context_length,
            # Styled as Text, never markup: a reason quotes a user's models.yaml and secrets.
            "available": Text("yes", "green")
            if info.available
            else Text.assemble(("no", "red"), f" ({info.reason})"),
            "description": info.description,
        }
        for info in infos
    ]
    _print_rows("Models", rows, {k: k for k in rows[0]} if rows else {"id": "id"})
