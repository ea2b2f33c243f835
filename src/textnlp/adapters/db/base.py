"""The declarative base every table hangs off, and the engine factory.

Tables live in modules beside this one and register on ``Base.metadata``; Alembic
(``textnlp/migrations``) owns the schema: see ``textnlp.adapters.db.schema``.

Outages are mapped here, once for every repository: each engine made by ``make_engine`` turns
a database that cannot be reached (refused, reset, shut down, starting up, out of connections,
SQLite busy past its timeout) into ``ServiceUnavailable(dependency="database")``. The API
answers it with 503 and the worker waits for the database instead of counting a job's attempt.
The hook sits on the engine rather than in each repository because the users, tokens and
spending repositories, the database queue and the auth service all share it, and none of them
needs to know a driver's exception classes. A value the database refuses (a NUL character in
text, which PostgreSQL cannot store; a number out of range) becomes ``InvalidInput``: such
values come from a client (an id in a path, a user name), whose request answers 422, not 500.
Other errors of the statement itself (a constraint, bad SQL) stay SQLAlchemy's.

Every wait is bounded on PostgreSQL (``DatabaseSettings``): a statement past
``statement_timeout_s`` or a lock wait past ``lock_timeout_s`` (requests queued behind a
migration's ``ALTER TABLE``) is cancelled and becomes ``ServiceUnavailable`` too, and a request
that finds the pool's connections all in use gives up after ``pool_timeout_s`` (the API maps
SQLAlchemy's pool ``TimeoutError`` to the same 503). Parameters never reach a log line or an
error message (``hide_parameters``): they hold prompts and user ids.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, MetaData, create_engine, event, make_url
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.pool import NullPool

from textnlp.adapters.db.schema import unreachable
from textnlp.config import DatabaseSettings
from textnlp.errors import ConfigError, InvalidInput, ServiceUnavailable

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: libpq settings that bound how long a dead server can hold a caller: a connect gives up
#: after 10 s, and an idle connection whose server vanished (a failover, a cut network) is
#: found dead by keepalives within about a minute instead of the kernel's two hours.
POSTGRES_TIMEOUTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}

#: SQLSTATE classes and codes of a server that is there but cannot serve now: connection
#: exceptions (08), insufficient resources such as too many connections (53), and operator
#: intervention: shutdown, crash recovery, "the database system is starting up" (57P01-57P03).
_UNAVAILABLE_STATES = ("08", "53", "57P01", "57P02", "57P03")
#: A statement cancelled by ``statement_timeout`` (57014) or ``lock_timeout`` (55P03).
_TIMED_OUT_STATES = ("57014", "55P03")

#: SQLite's transient failures: another writer held the lock past the busy timeout, or the
#: file cannot be opened (its volume is gone).
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, database: DatabaseSettings | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout, PostgreSQL the
    pool and timeouts of ``database`` (its defaults when None). A URL that SQLAlchemy cannot
    read, or of a dialect it does not know, is a ``ConfigError`` naming the setting, never the
    URL (it may hold a password)."""
    try:
        _check_authority(url)
        return _make_engine(url, database or DatabaseSettings(), **kwargs)
    except ArgumentError as exc:  # NoSuchModuleError (an unknown dialect) is one too
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"TEXTNLP_DATABASE__URL is not a database URL this server can use: {reason}"
        ) from None


#: What to do when the URL's parts came out wrong: nearly always a password with ``@``.
_ENCODE_ADVICE = (
    " (a user name or password holding '@', ':' or '/' must be percent-encoded: "
    "'@' as %40, ':' as %3A, '/' as %2F)"
)


def _check_authority(text: str) -> None:
    """Refuse a URL whose port is not a number (SQLAlchemy's ``int()`` raised ValueError, a
    traceback) or out of range, or whose host holds ``@``: a password's unencoded ``@`` cut
    it in two, the rest of the password was taken for the host, and "cannot reach the
    database at <part of the password>" was shown. The messages never quote the host or the
    port: either may be part of the password."""
    try:
        url = make_url(text)
    except ValueError:
        raise ConfigError(
            "TEXTNLP_DATABASE__URL is not a database URL this server can use: its port is not "
            f"a number{_ENCODE_ADVICE}"
        ) from None
    if url.host is not None and "@" in url.host:
        raise ConfigError(
            "TEXTNLP_DATABASE__URL is not a database URL this server can use: its host "
            f"holds '@'{_ENCODE_ADVICE}"
        )
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ConfigError(
            "TEXTNLP_DATABASE__URL is not a database URL this server can use: its port is "
            f"not between 1 and 65535{_ENCODE_ADVICE}"
        )


def _make_engine(url: str, database: DatabaseSettings, **kwargs: Any) -> Engine:
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    else:
        pool = {
            "pool_size": database.pool_size,
            "max_overflow": database.max_overflow,
            "pool_timeout": database.pool_timeout_s,
        }
        if kwargs.get("poolclass") is NullPool:  # a connection per use: nothing to size
            pool = {}
        engine = create_engine(url, pool_pre_ping=True, **{**pool, **_with_timeouts(url, kwargs)})
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", partial(_bound_waits, database))
    event.listen(engine, "handle_error", partial(_map_error, engine.url))
    return engine


def _bound_waits(database: DatabaseSettings, connection: Any, _: Any) -> None:
    """Each new connection's statement and lock timeouts (a ``SET``, which every PostgreSQL
    and pooler takes, unlike libpq's startup ``options``)."""
    cursor = connection.cursor()
    for name, seconds in (
        ("statement_timeout", database.statement_timeout_s),
        ("lock_timeout", database.lock_timeout_s),
    ):
        cursor.execute(f"SET {name} = {int(seconds * 1000)}")
    cursor.close()
    connection.commit()


def make_probe_engine(url: str, database: DatabaseSettings | None = None) -> Engine:
    """An engine for health probes: each use opens a connection of its own, outside the
    serving engine's pool, with the same timeouts. A pool held full by slow requests (a lock,
    long statements) is no outage: a probe through it waited ``pool_timeout_s`` and then called
    the database down, and load balancers took every task out of service."""
    return make_engine(url, database, poolclass=NullPool)


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


def _with_timeouts(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``POSTGRES_TIMEOUTS`` for psycopg, where neither the URL nor the caller set them."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or parsed.get_driver_name() != "psycopg":
        return kwargs
    given = {**parsed.query, **kwargs.get("connect_args", {})}
    defaults = {k: v for k, v in POSTGRES_TIMEOUTS.items() if k not in given}
    return {**kwargs, "connect_args": {**defaults, **kwargs.get("connect_args", {})}}


#: PostgreSQL's SQLSTATE for ``at_connection_limit``'s refusals, and their words: psycopg
#: gives a refused connect no SQLSTATE, only the server's FATAL message.
TOO_MANY_CONNECTIONS = "53300"
_CONNECTION_LIMIT_MESSAGES = (
    "too many clients already",
    "too many connections for role",
    "too many connections for database",
    "remaining connection slots are reserved",
)


def is_database_outage(context: ExceptionContext) -> bool:
    """Whether the error of ``context`` means the database cannot be reached now."""
    if context.is_pre_ping:  # the pool replaces a stale connection by itself
        return False
    if context.is_disconnect:
        return True
    error = context.original_exception
    dbapi = context.dialect.loaded_dbapi
    if context.dialect.name == "sqlite":
        message = str(error).lower()
        return isinstance(error, dbapi.OperationalError) and message.startswith(_SQLITE_UNAVAILABLE)
    if context.connection is None:  # no connection yet: the connect itself failed
        return isinstance(error, dbapi.OperationalError | dbapi.InterfaceError)
    state = str(getattr(error, "sqlstate", None) or getattr(error, "pgcode", None) or "")
    return bool(state) and state.startswith(_UNAVAILABLE_STATES)


def at_connection_limit(error: BaseException) -> bool:
    """Whether ``error`` (or one it was raised from) is PostgreSQL refusing a new connection at
    its connection limit ("too many clients", "too many connections for role"): the server
    answers, and connections already open still work."""
    seen: BaseException | None = error
    for _ in range(8):  # the chain is short; a cycle must not loop
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) == TOO_MANY_CONNECTIONS:
            return True
        if any(words in str(seen) for words in _CONNECTION_LIMIT_MESSAGES):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def _map_error(url: URL, context: ExceptionContext) -> None:
    """The ``handle_error`` hook: raising replaces SQLAlchemy's exception (the connection is
    invalidated all the same, so the pool reconnects once the database is back)."""
    if is_database_outage(context):
        raise unreachable(url, context.original_exception)
    error = context.original_exception
    state = str(getattr(error, "sqlstate", None) or "")
    if state in _TIMED_OUT_STATES:
        reason = (str(error).strip().splitlines() or ["timed out"])[0]
        raise ServiceUnavailable(
            f"the database did not answer in time: {reason}", dependency="database"
        )
    if isinstance(error, context.dialect.loaded_dbapi.DataError):
        reason = (str(error).strip().splitlines() or ["invalid value"])[0]
        raise InvalidInput(f"a value cannot be stored: {reason}")
