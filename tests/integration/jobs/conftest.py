"""The jobs tier's fixtures (``tests.support.job_stores``): job stores on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.support.job_stores import pg_engine, pg_jobs_url, sqlite_engine

__all__ = ["pg_engine", "pg_jobs_url", "sqlite_engine"]
