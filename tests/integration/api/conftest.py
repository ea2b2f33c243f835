"""The API tier's fixtures (``tests.support.api``): ``api`` on both databases, ``sqlite_api``."""

from __future__ import annotations

from tests.support.api import api, sqlite_api

__all__ = ["api", "sqlite_api"]
