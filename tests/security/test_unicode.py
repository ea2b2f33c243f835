"""Lone surrogates (``"\\ud800"`` in JSON) anywhere in a request answer 422 naming the field.

JSON can escape a code point no UTF-8 encoder accepts; downstream (tokeniser, cache key,
database, the answer itself) it used to be a 500, a cut stream or a poison job. Bodies are
sent as raw JSON text, the way an attacker's client would.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.security.conftest import Api

LONE = "\ud800"
TEXT = "/api/v1/generate/text"
INVOKE = "/api/v1/models/smollm2-135m/invoke"
QUALITY = "/api/v1/validate/quality"
SIMILARITY = "/api/v1/validate/similarity"
BATCH = "/api/v1/generate/batch"
KEYS = "/api/v1/auth/api-keys"

CASES: list[tuple[str, dict[str, Any], str]] = [
    (TEXT, {"prompt": f"hi {LONE}"}, "prompt"),
    (TEXT, {"prompt": "hi", "system": LONE}, "system"),
    (TEXT, {"prompt": "hi", "stop": ["ok", LONE]}, "stop"),
    (TEXT, {"prompt": "hi", "stream": True, "stop": [LONE]}, "stop"),
    (TEXT, {"template": "product-review", "variables": {"product": LONE}}, "variables"),
    (TEXT, {"template": "product-review", "variables": {LONE: "x"}}, "variables"),
    (TEXT, {"prompt": "hi", "model": LONE}, "model"),
    (INVOKE, {"prompt": LONE}, "prompt"),
    (INVOKE, {"messages": [{"role": "user", "content": LONE}]}, "messages"),
    (QUALITY, {"texts": ["fine", LONE]}, "texts"),
    (QUALITY, {"texts": ["{}"], "json_schema": {"const": LONE}}, "json_schema"),
    (SIMILARITY, {"candidates": [LONE], "references": ["x"]}, "candidates"),
    (BATCH, {"prompts": [f"a {LONE}"]}, "prompts"),
    (BATCH, {"prompts": [{"prompt": "ok", "system": LONE}]}, "prompts"),
    (BATCH, {"template": "product-review", "count": 1, "variables": {"x": LONE}}, "variables"),
    (BATCH, {"prompts": ["ok"], "params": {"stop": [LONE]}}, "params"),
    (KEYS, {"name": LONE}, "name"),
]


def raw_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()  # ensure_ascii: the surrogate travels as "\ud800"


@pytest.mark.parametrize(("path", "body", "field"), CASES, ids=[f"{p} {f}" for p, _, f in CASES])
def test_lone_surrogates_answer_422_naming_the_field(
    sqlite_api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    headers = {**sqlite_api.headers("alice"), "Content-Type": "application/json"}
    response = sqlite_api.client.post(path, content=raw_json(body), headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in error["message"] and "Unicode" in error["message"]


def test_login_with_a_lone_surrogate_is_422(sqlite_api: Api) -> None:
    response = sqlite_api.client.post(
        "/api/v1/auth/login",
        content=raw_json({"username": LONE, "password": "x"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


def test_uploaded_prompt_files_refuse_them(sqlite_api: Api) -> None:
    line = raw_json({"prompt": f"hi {LONE}"}) + b"\n"
    response = sqlite_api.client.put(
        f"{BATCH}/uploads/prompts.jsonl", content=line, headers=sqlite_api.headers("alice")
    )
    assert response.status_code == 422, response.text
    assert "prompt" in response.json()["error"]["message"]


def test_websocket_frames_refuse_them_and_stay_open(sqlite_api: Api) -> None:
    token = sqlite_api.headers("alice")["Authorization"].removeprefix("Bearer ")
    with sqlite_api.client.websocket_connect(
        f"/api/v1/generate/stream?access_token={token}"
    ) as socket:
        for body, field in (
            ({"prompt": LONE}, "prompt"),
            ({"prompt": "hi", "stop": [LONE]}, "stop.0"),
        ):
            socket.send_text(raw_json(body).decode())
            event = socket.receive_json()
            assert event["type"] == "error" and event["error"]["status"] == 422, event
            # named as the HTTP route names it, not as invalid JSON
            assert event["error"]["message"].startswith(f"{field}: text is not valid Unicode")
        for frame, message in (
            ("{not json", "body: invalid JSON: Expecting property name enclosed in double quotes"),
            ("[" * 100_000, "body: invalid JSON: nested too deeply"),
        ):
            socket.send_text(frame)
            event = socket.receive_json()
            assert event["error"]["type"] == "validation_error", event
            assert event["error"]["message"].startswith(message), event


# NUL (U+0000): valid JSON and URL text that PostgreSQL cannot store -----------------------------
NUL_CASES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/auth/login", {"username": "al\u0000ice", "password": "x"}),
    ("GET", "/api/v1/generate/status/a%00b", None),
    ("GET", "/api/v1/generate/status/a%00b/results", None),
    ("POST", "/api/v1/generate/status/a%00b/cancel", None),
    ("DELETE", "/api/v1/generate/status/a%00b", None),
    ("POST", KEYS, {"name": "a\u0000b"}),
    ("DELETE", f"{KEYS}/a%00b", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), NUL_CASES, ids=[f"{m} {p}" for m, p, _ in NUL_CASES]
)
def test_a_nul_character_answers_4xx_on_every_database(
    api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    headers = {} if path.endswith("/login") else api.headers("alice")
    response = api.client.request(method, path, json=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["type"] in {"invalid_input", "not_found", "validation_error"}
    # the connection and the user's session go on working
    assert (
        api.client.get(
            "/api/v1/generate/status/no-such-job", headers=api.headers("alice")
        ).status_code
        == 404
    )
