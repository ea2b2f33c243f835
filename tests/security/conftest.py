"""The standing adversarial suite: fixtures of the API tier, reused.

``api`` (SQLite and PostgreSQL) and ``sqlite_api`` are those of ``tests/integration/api``:
users ``admin``, ``alice`` and ``bob``. Every test here plays an attacker who holds an
ordinary account (or none) and sends one hostile request.
"""

from __future__ import annotations

from tests.support.api import Api, api, sqlite_api

__all__ = ["Api", "api", "sqlite_api"]
