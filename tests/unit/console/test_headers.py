"""The console's security headers: on its pages, fragments, errors and static files; not on
the API's routes; a Content-Security-Policy without inline scripts or ``eval``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, StreamingResponse
from fastapi.testclient import TestClient

from textnlp.api.console.headers import (
    CONTENT_SECURITY_POLICY,
    ConsoleHeadersMiddleware,
    is_console_path,
)


def directives() -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in CONTENT_SECURITY_POLICY.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def test_the_policy_allows_only_the_consoles_own_files() -> None:
    policy = directives()
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["base-uri"] == ["'none'"]
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY
    assert "http:" not in CONTENT_SECURITY_POLICY and "https:" not in CONTENT_SECURITY_POLICY


def test_console_paths() -> None:
    assert is_console_path("/console") and is_console_path("/console/jobs")
    assert is_console_path("/console/static/console.css")
    assert not is_console_path("/consoles") and not is_console_path("/api/v1/console")
    assert not is_console_path("/v1/models") and not is_console_path("/")


def make_client() -> TestClient:
    app = FastAPI()

    @app.get("/console/page")
    def page() -> PlainTextResponse:
        return PlainTextResponse("page")

    @app.get("/console/framed")
    def framed() -> PlainTextResponse:
        return PlainTextResponse("own", headers={"X-Frame-Options": "SAMEORIGIN"})

    @app.get("/console/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]), media_type="text/event-stream")

    @app.get("/console/static/x.css")
    def static() -> PlainTextResponse:
        return PlainTextResponse("body{}", media_type="text/css")

    @app.get("/api/v1/thing")
    def api() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(ConsoleHeadersMiddleware)
    return TestClient(app)


def test_pages_errors_and_streams_carry_the_headers_and_are_not_cached() -> None:
    client = make_client()
    for path, status in [("/console/page", 200), ("/console/stream", 200), ("/console/nope", 404)]:
        answer = client.get(path)
        assert answer.status_code == status
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cross-origin-opener-policy"] == "same-origin"
        assert answer.headers["cache-control"] == "no-store"
    assert client.get("/console/stream").text == "ab"


def test_static_files_carry_the_headers_and_may_be_cached() -> None:
    answer = make_client().get("/console/static/x.css")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in answer.headers


def test_a_routes_own_header_is_kept_and_the_api_is_left_alone() -> None:
    client = make_client()
    assert client.get("/console/framed").headers["x-frame-options"] == "SAMEORIGIN"
    api = client.get("/api/v1/thing")
    assert "content-security-policy" not in api.headers and "cache-control" not in api.headers
