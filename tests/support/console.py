"""A browser of the console as the test client plays it: the CSRF token of a page's forms, and
a login through the console's own form (integration tiers and the security suite)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2
from fastapi.testclient import TestClient

from tests.support.api import PASSWORD
from textnlp.api.console.csrf import CSRF_COOKIE, CSRF_FIELD

LOGIN = "/console/login"


def csrf_of(client: TestClient, page: str = LOGIN) -> str:
    """The CSRF token of ``page``'s forms (the browser's cookie is set by the first page)."""
    answer = client.get(page)
    assert answer.status_code == 200, answer.text
    match = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', answer.text)
    assert match is not None, answer.text
    assert client.cookies.get(CSRF_COOKIE) == match[1]
    return match[1]


def log_in(
    client: TestClient, username: str = "alice", password: str = PASSWORD, next: str = "/console"
) -> httpx2.Response:
    """The answer to the console's login form (303 to ``next`` when it worked)."""
    token = csrf_of(client)
    form = {CSRF_FIELD: token, "username": username, "password": password, "next": next}
    return client.post(LOGIN, data=form, follow_redirects=False)


def fresh_browser(client: TestClient) -> Iterator[TestClient]:
    """``client`` as a fresh browser for one test: no cookies, redirects not followed."""
    client.cookies.clear()
    client.follow_redirects = False
    try:
        yield client
    finally:
        client.cookies.clear()
        client.follow_redirects = True
