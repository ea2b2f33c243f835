"""The admin page on a real app: administrators only (403 for a user), the health of every
dependency, models with availability and circuit states, clearing the response cache, and
the users with their spending."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.integration.console.pages_app import (
    LOGIN_LIMITS,
    browser,
    htmx,
    log_in,
    pages_app,
)
from tests.support.api import Api, make_settings, postgres_schema_url, start_api
from tests.support.console import csrf_of
from textnlp.api.console.csrf import CSRF_FIELD
from textnlp.services.spending import SpendingService

__all__ = ["browser", "pages_app"]

ADMIN = "/console/admin"
CLEAR = "/console/admin/cache/clear"


def state(api: Api) -> object:
    return api.client.app.state  # type: ignore[attr-defined]


def row_of(page: str, header: str) -> str:
    """The table row whose header cell is ``header``."""
    match = re.search(rf'<th scope="row">{re.escape(header)}</th>(.*?)</tr>', page, re.S)
    assert match is not None, header
    return match[1]


def test_a_user_gets_403_and_no_admin_link(browser: TestClient) -> None:
    assert browser.get(ADMIN).status_code == 303  # no session: the login page
    token = log_in(browser, "alice")
    answer = browser.get(ADMIN)
    assert answer.status_code == 403
    assert "text/html" in answer.headers["content-type"] and "administrators" in answer.text
    assert 'href="/console/admin"' not in browser.get("/console/catalog").text
    refused = browser.post(CLEAR, data={CSRF_FIELD: token})
    assert refused.status_code == 403


def test_an_admin_sees_health_models_and_users(browser: TestClient, pages_app: Api) -> None:
    spending: SpendingService = state(pages_app).spending  # type: ignore[attr-defined]
    bob = state(pages_app).auth.user("bob")  # type: ignore[attr-defined]
    spending.record(bob.id, 0.25)
    spending.set_user_cap("bob", 1.0005)  # shown to four decimals, as the spending is
    log_in(browser, "admin")
    answer = browser.get(ADMIN)
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert 'href="/console/admin" aria-current="page"' in page
    for component in ("database", "cache", "queue", "storage"):
        assert "state-ok" in row_of(page, component) or "state-unchecked" in row_of(page, component)
    for model in ("smollm2-135m", "fake-fast", "fake-priced", "poison"):
        assert row_of(page, model)
    assert ">yes<" in row_of(page, "fake-fast")
    bob_row = row_of(page, "bob")
    assert "$0.2500" in bob_row and "$1.0005" in bob_row and "25 %" in bob_row
    assert "<td>admin</td>" in row_of(page, "admin") and row_of(page, "alice")


def test_a_called_remote_model_shows_its_circuit(browser: TestClient, pages_app: Api) -> None:
    headers = pages_app.headers("alice")
    body = {"prompt": "Say hello.", "model": "fake-priced", "max_tokens": 5}
    assert pages_app.client.post("/api/v1/generate/text", json=body, headers=headers).is_success
    log_in(browser, "admin")
    row = row_of(browser.get(ADMIN).text, "fake-priced")
    assert "closed" in row and ">yes<" in row


def test_an_admin_clears_the_response_cache(browser: TestClient, pages_app: Api) -> None:
    cache = state(pages_app).platform.response_cache  # type: ignore[attr-defined]
    headers = pages_app.headers("alice")
    body = {"prompt": "Cache me.", "model": "fake-fast", "max_tokens": 5, "temperature": 0}
    for _ in range(2):
        pages_app.client.post("/api/v1/generate/text", json=body, headers=headers)
    assert pages_app.client.post("/api/v1/generate/text", json=body, headers=headers).json()[
        "cached"
    ]
    log_in(browser, "admin")
    token = csrf_of(browser, ADMIN)
    assert browser.post(CLEAR, headers={"HX-Request": "true"}).status_code == 403  # no token
    answer = browser.post(CLEAR, headers=htmx(token))
    assert answer.status_code == 200, answer.text
    assert "<html" not in answer.text and "Response cache cleared" in answer.text
    assert re.search(r"cleared: [1-9]\d* entr", answer.text)
    assert cache.clear() == 0  # nothing was left
    again = pages_app.client.post("/api/v1/generate/text", json=body, headers=headers).json()
    assert again["cached"] is False
    # A plain form post answers the page with the message.
    plain = browser.post(CLEAR, data={CSRF_FIELD: token})
    assert plain.status_code == 200 and "<h1>Admin</h1>" in plain.text
    assert "Response cache cleared: " in plain.text


@pytest.fixture(scope="module")
def postgres_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on the real PostgreSQL (the users' query there)."""
    home = tmp_path_factory.mktemp("console-admin-pg")
    for url in postgres_schema_url():
        yield from start_api(make_settings(home, url, api=LOGIN_LIMITS))


def test_users_and_spending_on_postgresql(postgres_app: Api) -> None:
    spending: SpendingService = state(postgres_app).spending  # type: ignore[attr-defined]
    alice = state(postgres_app).auth.user("alice")  # type: ignore[attr-defined]
    spending.record(alice.id, 0.5)
    users = {u.username: u for u in spending.users()}
    assert sorted(users) == ["admin", "alice", "bob"]
    assert users["alice"].spent_usd == pytest.approx(0.5) and users["bob"].spent_usd == 0
    assert users["admin"].role == "admin" and users["alice"].limit_usd is None
    client = postgres_app.client
    client.cookies.clear()
    client.follow_redirects = False
    try:
        log_in(client, "admin")
        page = client.get(ADMIN).text
    finally:
        client.cookies.clear()
        client.follow_redirects = True
    assert "$0.5000" in row_of(page, "alice") and "state-ok" in row_of(page, "database")
