"""A user's JSON schema never makes the server fetch anything (``$ref`` SSRF).

A listener on loopback stands for an internal service; it records every request and answers a
secret. Schemas referring to it (absolutely, relatively to an ``$id``, by redirect) must answer
422 without one request reaching it and without its content in the answer; local references
keep working.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.security.conftest import Api

QUALITY = "/api/v1/validate/quality"
SECRET = "internal-secret-4c1f"


class Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Recorder.hits.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/schema.json")
            self.end_headers()
            return
        body = f'{{"type": "string", "const": "{SECRET}"}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def internal_service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def schemas(base: str) -> dict[str, dict[str, object]]:
    return {
        "absolute $ref": {"$ref": f"{base}/schema.json"},
        "nested $ref": {"type": "object", "properties": {"a": {"$ref": f"{base}/schema.json"}}},
        "relative to $id": {"$id": f"{base}/root.json", "$ref": "schema.json"},
        "redirect": {"$ref": f"{base}/redirect"},
        "$dynamicRef": {"$dynamicRef": f"{base}/schema.json#meta"},
        "file": {"$ref": "file:///etc/passwd"},
        "cloud metadata": {"$ref": "http://169.254.169.254/latest/meta-data/"},
    }


@pytest.mark.parametrize("case", list(schemas("http://127.0.0.1:1")))
def test_remote_references_are_refused_and_never_fetched(
    sqlite_api: Api, internal_service: str, case: str
) -> None:
    Recorder.hits.clear()
    schema = schemas(internal_service)[case]
    body = {"texts": ['{"a": "x"}'], "expect_json": True, "json_schema": schema}
    response = sqlite_api.client.post(QUALITY, json=body, headers=sqlite_api.headers("alice"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "json_schema" in error["message"] and "never fetched" in error["message"]
    assert SECRET not in response.text
    assert Recorder.hits == []


def test_local_references_still_work(sqlite_api: Api) -> None:
    schema = {
        "$defs": {"name": {"type": "string", "minLength": 2}},
        "type": "object",
        "properties": {"name": {"$ref": "#/$defs/name"}, "self": {"$ref": "#/properties/name"}},
        "required": ["name"],
    }
    body = {"texts": ['{"name": "Ada"}', '{"name": "A"}'], "json_schema": schema}
    response = sqlite_api.client.post(QUALITY, json=body, headers=sqlite_api.headers("alice"))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["json_valid"] for r in results] == [True, False]
    assert "name" in results[1]["json_error"]
