"""The console's CSRF check: a double-submit token (cookie = form field or header) and the
request's origin, on a small app that uses ``CsrfChecked`` as the console's routes do."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient

from textnlp.api.console.csrf import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    CsrfChecked,
    csrf_token,
    remember_csrf,
)
from textnlp.errors import PermissionDenied

ORIGIN = "http://testserver"


def make_app(profile: str = "local") -> FastAPI:
    app = FastAPI()
    app.state.settings = SimpleNamespace(profile=profile)

    @app.exception_handler(PermissionDenied)
    async def _denied(request: Request, exc: PermissionDenied) -> Response:
        return JSONResponse({"refused": exc.message}, status_code=403)

    @app.get("/console/form")
    def form(request: Request) -> Response:
        response = PlainTextResponse(csrf_token(request))
        remember_csrf(request, response)
        return response

    @app.post("/console/act")
    def act(_csrf: CsrfChecked) -> Response:
        return PlainTextResponse("done")

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def token_of(client: TestClient) -> str:
    answer = client.get("/console/form")
    assert answer.status_code == 200
    return answer.text


def test_a_page_sets_the_token_cookie_once(client: TestClient) -> None:
    first = client.get("/console/form")
    cookie = first.headers["set-cookie"]
    assert f"{CSRF_COOKIE}={first.text}" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # the local profile is plain http on localhost
    again = client.get("/console/form")
    assert again.text == first.text and "set-cookie" not in again.headers
    assert len(first.text) >= 32


def test_the_cookie_is_secure_outside_the_local_profile() -> None:
    cookie = TestClient(make_app("aws")).get("/console/form").headers["set-cookie"]
    assert "Secure" in cookie


def test_a_form_or_header_with_the_token_passes(client: TestClient) -> None:
    token = token_of(client)
    assert client.post("/console/act", data={CSRF_FIELD: token}).text == "done"
    assert client.post("/console/act", headers={CSRF_HEADER: token}).text == "done"
    same_site = {CSRF_HEADER: token, "Origin": ORIGIN}
    assert client.post("/console/act", headers=same_site).status_code == 200
    fetch = {CSRF_HEADER: token, "Sec-Fetch-Site": "same-origin", "Origin": ORIGIN}
    assert client.post("/console/act", headers=fetch).status_code == 200


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        ({}, {}),  # no token at all
        ({CSRF_FIELD: ""}, {}),
        ({CSRF_FIELD: "forged"}, {}),
        ({}, {CSRF_HEADER: "forged"}),
    ],
)
def test_a_missing_or_wrong_token_is_refused(
    client: TestClient, data: dict[str, str], headers: dict[str, str]
) -> None:
    token_of(client)
    refused = client.post("/console/act", data=data, headers=headers)
    assert refused.status_code == 403 and "expired" in refused.json()["refused"]


def test_no_cookie_is_refused_even_with_a_matching_looking_field() -> None:
    fresh = TestClient(make_app())
    refused = fresh.post("/console/act", data={CSRF_FIELD: "x" * 43})
    assert refused.status_code == 403


def test_a_header_wins_over_the_form(client: TestClient) -> None:
    token = token_of(client)
    mixed = client.post("/console/act", data={CSRF_FIELD: token}, headers={CSRF_HEADER: "bad"})
    assert mixed.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": ORIGIN},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site's code
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
    ],
)
def test_a_cross_site_request_is_refused_even_with_the_token(
    client: TestClient, headers: dict[str, str]
) -> None:
    token = token_of(client)
    refused = client.post("/console/act", data={CSRF_FIELD: token}, headers=headers)
    assert refused.status_code == 403 and "cross-site" in refused.json()["refused"]


def test_another_sites_origin_without_the_token_is_refused(client: TestClient) -> None:
    """Behind API Gateway the app does not see the browser's host, so ``Origin`` is not
    compared with ``Host``; a request from another site cannot carry the token."""
    token_of(client)
    evil = {"Origin": "https://evil.example"}
    assert client.post("/console/act", data={CSRF_FIELD: "guess"}, headers=evil).status_code == 403
    assert client.post("/console/act", headers=evil).status_code == 403
