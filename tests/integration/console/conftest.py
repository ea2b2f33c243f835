"""The console on a real app (``TestClient``): the local profile on SQLite for most tests, and
the ``aws`` profile on the real PostgreSQL (with local adapters for the rest) where only the
profile matters (``Secure`` cookies)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.api import Api, make_settings, postgres_schema_url, start_api
from tests.support.console import fresh_browser
from textnlp.api.app import create_app
from textnlp.config import load_settings

#: Logins are rate limited per username (10 at once); these tests log in more often than that.
LOGIN_LIMITS = {"login_limit_per_username": (50.0, 200), "login_limit_per_address": None}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on SQLite (local profile); users admin, alice and bob exist."""
    home = tmp_path_factory.mktemp("console-home")
    yield from start_api(make_settings(home, api=LOGIN_LIMITS))


@pytest.fixture
def browser(console: Api) -> Iterator[TestClient]:
    """The module's client as a fresh browser: no cookies, redirects not followed."""
    yield from fresh_browser(console.client)


@pytest.fixture(scope="module")
def aws_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The ``aws`` profile's app over https (its adapters local but the database), with user
    alice."""
    home = tmp_path_factory.mktemp("console-aws-home")
    for url in postgres_schema_url():
        settings = load_settings(
            home=home,
            profile="aws",
            database={"url": url},
            queue={"backend": "local"},
            storage={"backend": "local"},
            secrets={"backend": "env"},
            auth={"session_store": "database", "jwt_secret": secrets.token_urlsafe(48)},
            observability={"emf": False},
            api=LOGIN_LIMITS,
        )
        app = create_app(settings)
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            app.state.auth.create_user("alice", "correct horse battery")
            yield client
