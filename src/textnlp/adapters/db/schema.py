"""The database schema's version: Alembic migrations (``textnlp/migrations``), applied in one
explicit step, and the check every service makes before it serves.

``textnlp db upgrade`` (the deployment's one-off migration task, before services roll) applies
every migration. A service never migrates a server database itself: two tasks starting
together would race. It checks the revision instead and refuses to start, in one line, when
the schema is behind this release. A schema ahead of it (revisions this release does not know,
from the release being deployed) is accepted with a warning: while a deploy shifts traffic, or
rolls back, the previous release's tasks restart on the migrated database, so migrations are
additive (expand first, contract a release later) and the previous release runs on them. The
one exception is the local profile's SQLite file, which
belongs to one user on one machine: it is created and upgraded on first use, under a file
lock, so ``textnlp serve`` works from a fresh clone.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Engine, make_url
from sqlalchemy.exc import OperationalError

from textnlp.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from textnlp.config import DatabaseSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

#: Columns no table declares any more, kept by the migrations for the previous release's code
#: (expand first, contract a release later): (table, column). A later migration drops them.
LEGACY_COLUMNS = frozenset(
    {
        ("users", "sessions_after"),  # before 0007_user_session_epoch
        ("jobs", "reserved_usd"),  # before 0013_job_holds
    }
)


def _config(url: str, database: DatabaseSettings | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    if database is not None:  # its lock timeout, for migrations/env.py
        config.attributes["database"] = database
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config interpolates "%": escape it (URL-encoded passwords contain it).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, database: DatabaseSettings | None = None) -> None:
    """Apply every migration to the database at ``url`` (idempotent). A database ahead of this
    release (the previous release redeployed, its migration task run again) is left as it is:
    Alembic cannot walk from revisions it does not know."""
    from alembic import command

    from textnlp.adapters.db.base import make_engine

    engine = make_engine(url)
    try:
        newer = _ahead(current_revisions(engine))
    finally:
        engine.dispose()
    if newer:
        log.warning(
            "the database schema is ahead of this release (%s): nothing to migrate",
            ", ".join(sorted(newer)),
        )
        return
    try:
        command.upgrade(_config(url, database), "heads")
    except OperationalError as exc:
        # The engine's hook says an outage as one (``unreachable``): this one is a statement
        # the database refused ("no such table" was "cannot reach the database").
        where = _where(make_url(url))
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        raise ConfigError(f"a migration failed on the database at {where}: {reason}") from None


def head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(_config("")).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    except OperationalError as exc:
        raise unreachable(engine.url, exc) from None


def unreachable(url: URL, exc: BaseException) -> ServiceUnavailable:
    """The error for a database that does not answer (host and driver error, no password)."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
    return ServiceUnavailable(
        f"cannot reach the database at {_where(url)}: {reason}", dependency="database"
    )


def _where(url: URL) -> str | None:
    return f"{url.host}:{url.port}" if url.host else url.database


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_config("")).walk_revisions()}


def _ahead(current: set[str]) -> set[str]:
    """The revisions that put ``current`` ahead of this release: ones it does not know, beside
    its own heads (none: not ahead)."""
    newer = current - known_revisions()
    return newer if newer and current - newer <= head_revisions() else set()


def check_schema(engine: Engine) -> None:
    """``ConfigError`` in one line unless the database is at this release's revision, or ahead
    of it: revisions this release does not know beside its own heads (a newer release's)."""
    current, heads = current_revisions(engine), head_revisions()
    newer = _ahead(current)
    if newer:
        log.warning(
            "the database schema is ahead of this release (%s): running on it",
            ", ".join(sorted(newer)),
        )
        return
    if current != heads:
        found = ", ".join(sorted(current)) or "empty"
        raise ConfigError(
            f"the database schema is at revision {found}, this release needs "
            f"{', '.join(sorted(heads))}: run `textnlp db upgrade` (the migration task) first"
        )


def prepare_schema(engine: Engine) -> None:
    """Upgrade the local SQLite file on first use; check every other database."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        check_schema(engine)
        return
    lock = Path(f"{path}.lock")
    with lock.open("a") as handle:  # processes starting together upgrade one at a time
        fcntl.flock(handle, fcntl.LOCK_EX)
        if current_revisions(engine) != head_revisions():
            upgrade_database(engine.url.render_as_string(hide_password=False))
