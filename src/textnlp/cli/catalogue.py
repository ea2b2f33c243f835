"""``textnlp templates list|show`` and ``textnlp models list``."""

from __future__ import annotations

import typer
import yaml
from rich.syntax import Syntax
from rich.table import Table

from textnlp.cli.common import console, platform

templates_app = typer.Typer(help="Prompt templates.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalogue.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(templates_app, name="templates")
    app.add_typer(models_app, name="models")


@templates_app.command("list")
def list_templates() -> None:
    """Built-in and user templates."""
    library = platform().templates
    table = Table(title="Templates")
    for column in ("id", "version", "output", "variables", "description"):
        table.add_column(column)
    for template in library.all():
        table.add_row(
            template.id,
            template.version,
            template.output.type,
            ", ".join(template.variables),
            template.description,
        )
    console.print(table)


@templates_app.command("show")
def show_template(
    template_id: str = typer.Argument(..., help="Template id or path to a YAML file."),
    seed: int = typer.Option(0, help="Seed of the sample prompt."),
    index: int = typer.Option(0, help="Record index of the sample prompt."),
) -> None:
    """A template's definition and one rendered sample prompt."""
    template = platform().templates.get(template_id)
    definition = template.model_dump(mode="json", by_alias=True, exclude_none=True)
    definition.pop("source", None)
    console.print(Syntax(yaml.safe_dump(definition, sort_keys=False), "yaml"))
    variables = template.sample_variables(seed, index)
    system, user = template.render(variables)
    console.rule(f"sample prompt (seed {seed}, record {index})")
    console.print(f"[bold]variables[/]: {variables}")
    if system:
        console.print(f"[bold]system[/]: {system}")
    console.print(f"[bold]user[/]: {user}")


@models_app.command("list")
def list_models() -> None:
    """Every model of the catalogue and whether it can run here."""
    catalogue = platform().catalogue
    table = Table(title="Models")
    for column in ("id", "backend", "context", "available", "description"):
        table.add_column(column)
    for model_id in catalogue.ids():
        info = catalogue.describe(model_id)
        available = "[green]yes[/]" if info.available else f"[red]no[/] ({info.reason})"
        table.add_row(info.id, info.backend, str(info.context_length), available, info.description)
    console.print(table)
