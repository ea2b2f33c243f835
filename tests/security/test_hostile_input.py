"""Deep, self-referencing, oversized and malformed input answers 4xx in the error format.

Each case used to be a 500 (``RecursionError``, ``OSError``, ``csv.Error``) or a WebSocket
left unclosed (``KeyError``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.security.conftest import Api

QUALITY = "/api/v1/validate/quality"
UPLOADS = "/api/v1/generate/batch/uploads"
STREAM = "/api/v1/generate/stream"


def deep_text(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def assert_4xx(response: Any) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, response.text
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["type"], str) and isinstance(error["message"], str)
    return error


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"allOf": [{"$ref": "#"}], "unevaluatedProperties": False},
        '{"items": ' * 200 + "{}" + "}" * 200,
        '{"properties": ' + '{"a": ' * 5000 + "{}" + "}" * 5001,
    ],
    ids=["self", "cycle", "unevaluated cycle", "200 deep", "5000 deep"],
)
def test_deep_or_self_referencing_schemas_are_422(sqlite_api: Api, schema: Any) -> None:
    raw = schema if isinstance(schema, str) else json.dumps(schema)
    body = '{"texts": ["{\\"a\\": {}}"], "json_schema": ' + raw + "}"
    headers = {**sqlite_api.headers("alice"), "Content-Type": "application/json"}
    response = sqlite_api.client.post(QUALITY, content=body.encode(), headers=headers)
    error = assert_4xx(response)
    if response.status_code == 422:  # deeper than the JSON parser goes: 400, before any route
        assert "json_schema" in error["message"]


def test_exponential_schemas_stop_at_the_work_bound(sqlite_api: Api) -> None:
    defs: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(40)
    }
    defs["d40"] = {"type": "string"}
    schema = {"$defs": defs, "$ref": "#/$defs/d0"}
    body = {"texts": ["1"], "json_schema": schema}
    response = sqlite_api.client.post(QUALITY, json=body, headers=sqlite_api.headers("alice"))
    assert response.status_code == 422 and "steps" in assert_4xx(response)["message"]


@pytest.mark.parametrize("depth", [100, 10_000, 100_000])
def test_deep_json_texts_are_invalid_json_not_500(sqlite_api: Api, depth: int) -> None:
    body = {"texts": [deep_text(depth)], "json_schema": {"type": "object"}}
    response = sqlite_api.client.post(QUALITY, json=body, headers=sqlite_api.headers("alice"))
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["json_valid"] is False and "nested" in result["json_error"]


def test_deep_request_bodies_are_4xx(sqlite_api: Api) -> None:
    headers = {**sqlite_api.headers("alice"), "Content-Type": "application/json"}
    body = '{"texts": ["x"], "json_schema": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001
    assert_4xx(sqlite_api.client.post(QUALITY, content=body.encode(), headers=headers))
    body = '{"prompt": "hi", "stop": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert_4xx(sqlite_api.client.post("/api/v1/generate/text", content=body, headers=headers))


def test_an_upload_name_too_long_for_a_file_system_is_422(sqlite_api: Api) -> None:
    name = "p" * 300 + ".jsonl"
    response = sqlite_api.client.put(
        f"{UPLOADS}/{name}", content=b'{"prompt": "hi"}\n', headers=sqlite_api.headers("alice")
    )
    assert response.status_code == 422, response.text


def test_a_csv_field_over_the_csv_limit_is_422(sqlite_api: Api) -> None:
    data = b'prompt\n"' + b"x" * 140_000 + b'"\n'
    response = sqlite_api.client.put(
        f"{UPLOADS}/prompts.csv", content=data, headers=sqlite_api.headers("alice")
    )
    error = assert_4xx(response)
    assert response.status_code == 422 and "prompts.csv" in error["message"]


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deep_json_upload_lines_are_422(sqlite_api: Api, depth: int) -> None:
    line = '{"prompt": "hi", "label": ' + "[" * depth + "]" * depth + "}\n"
    response = sqlite_api.client.put(
        f"{UPLOADS}/prompts.jsonl", content=line.encode(), headers=sqlite_api.headers("alice")
    )
    assert response.status_code == 422, response.text
    assert "line 1" in assert_4xx(response)["message"]


def test_a_binary_websocket_frame_is_an_error_event_and_the_socket_stays_usable(
    sqlite_api: Api,
) -> None:
    token = sqlite_api.headers("alice")["Authorization"].removeprefix("Bearer ")
    with sqlite_api.client.websocket_connect(f"{STREAM}?access_token={token}") as socket:
        socket.send_bytes(b'{"prompt": "hi"}')
        event = socket.receive_json()
        assert event["type"] == "error" and event["error"]["status"] == 400, event
        socket.send_text("not json")
        assert socket.receive_json()["type"] == "error"
        socket.send_text(json.dumps({"prompt": "hi", "max_tokens": 0}))
        assert socket.receive_json()["error"]["status"] == 422
