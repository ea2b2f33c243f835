"""Alembic environment: the URL comes from the caller (``upgrade_database``) or settings.

On PostgreSQL one migration runs at a time (a transaction-scoped advisory lock: a second
``textnlp db upgrade`` waits, then finds nothing to do), and its statements have no time
bound but its lock waits do (``DatabaseSettings.lock_timeout_s``): an ``ALTER TABLE`` queued
behind a long transaction gives up instead of stopping every request queued behind it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from alembic import context
from sqlalchemy import text

import textnlp.adapters.db as db_package
from textnlp.adapters.db.base import Base, make_engine
from textnlp.config import DatabaseSettings, load_settings

# Import every table module so that autogenerate sees the whole schema.
for module in pkgutil.iter_modules(db_package.__path__):
    importlib.import_module(f"textnlp.adapters.db.{module.name}")

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
# The caller's database settings (``upgrade_database``), or the environment's for the alembic
# CLI, which gives no URL either; a caller with a URL alone gets the defaults.
database: DatabaseSettings | None = config.attributes.get("database")
if not url:
    settings = load_settings()
    url, database = settings.database_url, database or settings.database

#: A migration's statements may take long (a new index on a large table); its lock waits not.
BOUNDS = (database or DatabaseSettings()).model_copy(update={"statement_timeout_s": 0})
#: The advisory lock key of migrations (a constant the app uses for nothing else).
MIGRATION_LOCK = 7_465_786_174


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url, BOUNDS)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                _one_at_a_time(connection)
            context.run_migrations()
    engine.dispose()


def _one_at_a_time(connection: Any) -> None:
    """Wait (unbounded) for another migration to commit; lock waits are bounded again after."""
    connection.execute(text("SET LOCAL lock_timeout = 0"))
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    bound = int(BOUNDS.lock_timeout_s * 1000)
    connection.execute(text(f"SET LOCAL lock_timeout = {bound}"))


run()
