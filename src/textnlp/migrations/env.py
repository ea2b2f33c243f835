"""Alembic environment: the URL comes from the caller (``upgrade_database``) or settings."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context

import textnlp.adapters.db as db_package
from textnlp.adapters.db.base import Base, make_engine

# Import every table module so that autogenerate sees the whole schema.
for module in pkgutil.iter_modules(db_package.__path__):
    importlib.import_module(f"textnlp.adapters.db.{module.name}")

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
if not url:  # the alembic CLI: the database of the settings
    from textnlp.config import load_settings

    url = load_settings().database_url


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
