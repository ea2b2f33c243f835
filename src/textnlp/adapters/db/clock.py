"""The database's clock, for times that several hosts write and compare (spending holds' leases).

A lease written by one worker and read by another is only as good as their clocks' agreement:
a worker whose clock runs ahead would take others' live holds for expired (the owner's cap
passed), one whose clock lags would count dead holds for longer. Every such time is written
and compared with the one clock they share, the database's: ``db_clock(seconds)`` is its now
(PostgreSQL: ``statement_timestamp()``; SQLite: ``'now'``) plus ``seconds``.

SQLite keeps a ``DateTime`` as text, ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's format), and
compares it as text: ``strftime``'s milliseconds are padded to that format, so the times it
writes sort with those SQLAlchemy writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class db_clock(FunctionElement[datetime]):  # noqa: N801 - used as a SQL function
    """The database's time now, ``seconds`` (may be negative) on."""

    type = DateTime(timezone=True)
    name = "db_clock"
    inherit_cache = True

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(literal(float(seconds), Float()))


@compiles(db_clock, "postgresql")
def _postgresql(element: db_clock, compiler: SQLCompiler, **kw: Any) -> str:
    # statement_timestamp(), not now(): a long transaction's now() is its start.
    seconds = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() + make_interval(secs => {seconds}))"


@compiles(db_clock, "sqlite")
def _sqlite(element: db_clock, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    modifier = f"printf('%.6f seconds', {seconds})"
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', {modifier}) || '000')"
