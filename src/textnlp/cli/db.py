"""``textnlp db upgrade|current``: the database schema, migrated in one explicit step.

The deployment runs ``textnlp db upgrade`` as a one-off task before services roll out;
services check the revision at start and refuse an outdated schema (``adapters.db.schema``).
"""

from __future__ import annotations

import typer

from textnlp.cli.common import console, service_settings, settings

db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade() -> None:
    """Apply every migration this release has (idempotent)."""
    from textnlp.adapters.db.base import make_engine
    from textnlp.adapters.db.schema import current_revisions, upgrade_database

    current = service_settings()
    url = current.database_url
    upgrade_database(url, current.database)  # its lock timeout too
    engine = make_engine(url)
    try:
        revision = ", ".join(sorted(current_revisions(engine)))
    finally:
        engine.dispose()
    console.print(f"database at revision {revision}")


@db_app.command("current")
def current() -> None:
    """The database's revision and this release's; exit 1 when they differ."""
    from textnlp.adapters.db.base import make_engine
    from textnlp.adapters.db.schema import current_revisions, head_revisions

    engine = make_engine(settings().database_url)
    try:
        found = current_revisions(engine)
    finally:
        engine.dispose()
    heads = head_revisions()
    console.print(
        f"database: {', '.join(sorted(found)) or 'empty'}; release: {', '.join(sorted(heads))}"
    )
    if found != heads:
        raise typer.Exit(1)
