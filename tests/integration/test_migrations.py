"""The migrations build the schema the tables declare, on SQLite and on the machine's
PostgreSQL: Alembic's autogenerate finds nothing left to migrate (a column added to a table
without its migration, or the reverse, fails here before a deployment's server refuses it)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

import textnlp.adapters.db as db_package
from tests.support.api import postgres_schema_url
from textnlp.adapters.db.base import Base
from textnlp.adapters.db.schema import upgrade_database


def _differences(url: str) -> list[object]:
    for module in pkgutil.iter_modules(db_package.__path__):  # every table registered
        importlib.import_module(f"textnlp.adapters.db.{module.name}")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


# SQLite cannot reflect an index on an expression (lower(username)): PostgreSQL compares it.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_migrated_schema_is_the_declared_one(database: str, tmp_path: Path) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        upgrade_database(url)
        assert _differences(url) == []
        return
    for url in postgres_schema_url():  # migrated by the helper, in a schema of its own
        assert _differences(url) == []
