"""A real app per module (TestClient), on SQLite and on the real PostgreSQL.

PostgreSQL is shared: each app gets a schema of its own (``search_path``), dropped afterwards,
so the tests are safe to run twice and beside other suites.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_URL, port_open, require
from textnlp.adapters.db.schema import upgrade_database
from textnlp.api.app import create_app
from textnlp.client import TextNLPClient
from textnlp.config import Settings, load_settings

PASSWORD = "correct horse battery"


@dataclass
class Api:
    client: TestClient
    settings: Settings
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def session(self, username: str) -> dict[str, Any]:
        """The tokens of one login per user per app (logins are rate limited per username)."""
        if username not in self.tokens:
            self.tokens[username] = self.login(username)
        return self.tokens[username]

    def headers(self, username: str) -> dict[str, str]:
        """Bearer headers of a logged-in user (one login per user per app)."""
        return {"Authorization": f"Bearer {self.session(username)['access_token']}"}

    def transport(self) -> httpx.MockTransport:
        """An ``httpx`` transport into the app, for the Python client: each request with its
        path as sent, through the TestClient (which decodes paths, ``%2F`` too, as uvicorn
        does), following no redirect (the client's own httpx follows none)."""

        def forward(request: httpx.Request) -> httpx.Response:
            answer = self.client.request(
                request.method,
                request.url.raw_path.decode(),
                headers=dict(request.headers),
                content=request.read(),
                follow_redirects=False,
            )
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )

        return httpx.MockTransport(forward)

    @contextmanager
    def python_client(self, username: str) -> Iterator[TextNLPClient]:
        """The Python client (``textnlp.client``) of a logged-in user, into this app."""
        token = self.session(username)["access_token"]
        with TextNLPClient("http://testserver", api_key=token, transport=self.transport()) as c:
            yield c


def without_reuse_grace(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's auth as it is once the grace after a rotation has passed (none left):
    presenting a rotated-out refresh token revokes its family."""
    from textnlp.auth.tokens import TokenService

    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    settings = api.settings.auth.model_copy(update={"refresh_reuse_grace_s": 0.0})
    monkeypatch.setattr(auth, "tokens", TokenService(settings))


def start_api_with_models(home: Path, models_yaml: str) -> Iterator[Api]:
    """``start_api`` with the test backends registered and ``models_yaml``'s catalogue."""
    from tests.support.job_backends import register

    register()
    models = home / "models.yaml"
    models.write_text(models_yaml)
    yield from start_api(make_settings(home, models_file=models))


def make_settings(home: Path, database_url: str = "", **overrides: Any) -> Settings:
    return load_settings(home=home, database={"url": database_url}, **overrides)


def postgres_schema_url() -> Iterator[str]:
    require(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    schema = f"textnlp_api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{POSTGRES_URL}?options=-csearch_path={schema}"
        upgrade_database(url)  # the deployment's migration step
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def start_api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        auth = app.state.auth
        auth.create_user("admin", PASSWORD, "admin")
        auth.create_user("alice", PASSWORD)
        auth.create_user("bob", PASSWORD)
        yield Api(client, app.state.settings)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on each database; users admin, alice and bob exist."""
    home = tmp_path_factory.mktemp("api-home")
    if request.param == "sqlite":
        yield from start_api(make_settings(home))
        return
    for url in postgres_schema_url():
        yield from start_api(make_settings(home, url))


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on SQLite only (for tests whose subject is not persistence)."""
    yield from start_api(make_settings(tmp_path_factory.mktemp("api-home")))
