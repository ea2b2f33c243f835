"""Bad input answers the right 4xx in the error format, never a 500, before any model runs."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse

from tests.support.api import Api, make_settings, start_api
from tests.support.console import fresh_browser, log_in

TEXT = "/api/v1/generate/text"
BATCH = "/api/v1/generate/batch"


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def assert_error(response: object, status: int, kind: str | None = None) -> dict[str, object]:
    """The error JSON of an answer; under /console, the message of its error page."""
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    if response.url.path.startswith("/console"):  # type: ignore[attr-defined]
        return console_error_of(response, status)
    body = response.json()["error"]  # type: ignore[attr-defined]
    assert isinstance(body["type"], str) and isinstance(body["message"], str)
    if kind is not None:
        assert body["type"] == kind, body
    return body  # type: ignore[no-any-return]


def console_error_of(response: object, status: int) -> dict[str, object]:
    assert response.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    page = response.text  # type: ignore[attr-defined]
    assert f"<h1>Error {status}</h1>" in page
    found = re.search(r'<p class="flash flash-error">([^<]*)</p>', page)
    assert found is not None, page
    return {"type": "page", "message": html.unescape(found.group(1))}


@pytest.fixture(scope="module")
def bounded_api(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path_factory.mktemp("bounded"),
        api={
            "max_body_bytes": 2048,
            "max_prompt_chars": 100,
            "max_tokens": 64,
            "max_n": 2,
            "user_rate_limits": {"bob": [1.0, 3]},
        },
    )
    yield from start_api(settings)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"prompt": "hi", "temperature": 3}, "temperature"),
        ({"prompt": "hi", "top_p": 0}, "top_p"),
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "hi", "max_tokens": 5000}, "max_tokens"),
        ({"prompt": "hi", "n": 17}, "n"),
        ({"prompt": "hi", "seed": -1}, "seed"),
        ({"prompt": "hi", "max_tokens": "many"}, "max_tokens"),
        ({"prompt": "hi", "max_tokens": "2"}, "max_tokens"),  # strict: no text read as a number
        ({"prompt": "hi", "stream": "yes"}, "stream"),
        ({"prompt": "hi", "bogus": True}, "bogus"),
        ({"prompt": ["not", "a", "string"]}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "hi", "template": "qa-pairs"}, "prompt"),
        ({"prompt": "hi", "stream": True, "n": 2}, "n = 1"),
    ],
)
def test_invalid_generation_bodies_are_422(api: Api, body: dict[str, object], where: str) -> None:
    error = assert_error(
        api.client.post(TEXT, json=body, headers=api.headers("alice")), 422, "validation_error"
    )
    assert where in str(error)


def test_malformed_json_and_wrong_content(api: Api) -> None:
    headers = {**api.headers("alice"), "Content-Type": "application/json"}
    error = assert_error(api.client.post(TEXT, content=b'{"prompt": ', headers=headers), 422)
    # What is wrong and where, not the offset shown as if it were a field ("11: JSON ...").
    assert error["message"] == "body: invalid JSON: Expecting value at character 11"
    assert error["errors"] == [  # type: ignore[comparison-overlap]
        {
            "loc": ["body"],
            "msg": "invalid JSON: Expecting value at character 11",
            "type": "json_invalid",
        }
    ]
    raw = b'{"prompt": "a\x01b"}'  # a control character inside a string
    control = assert_error(api.client.post(TEXT, content=raw, headers=headers), 422)
    assert control["message"] == "body: invalid JSON: Invalid control character at character 13"
    for number in (b"NaN", b"Infinity", b"-Infinity"):  # Python's parser takes them
        body = b'{"prompt": "hi", "temperature": ' + number + b"}"
        error = assert_error(api.client.post(TEXT, content=body, headers=headers), 422)
        assert error["message"] == "temperature: Input should be a finite number"
    assert_error(api.client.post(TEXT, content=b"[1, 2]", headers=headers), 422)
    assert_error(api.client.post(TEXT, content=b"\xff\xfe", headers=headers), 422)
    # Bodies FastAPI cannot parse at all: its 400, with the reason (it says only "There was an
    # error parsing the body").
    latin1 = b'{"prompt": "caf\xe9"}'
    error = assert_error(api.client.post(TEXT, content=latin1, headers=headers), 400)
    assert error["message"] == "the body is not UTF-8 JSON"
    deep = b'{"prompt": "hi", "stop": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    error = assert_error(api.client.post(TEXT, content=deep, headers=headers), 400)
    assert error["message"] == "the body's JSON is nested too deeply"


def test_unknown_model_template_and_route(api: Api) -> None:
    headers = api.headers("alice")
    body: dict[str, Any] = {"prompt": "hi", "model": "no-such-model"}
    assert_error(api.client.post(TEXT, json=body, headers=headers), 404, "model_not_found")
    body = {"template": "no-such-template"}
    assert_error(api.client.post(TEXT, json=body, headers=headers), 404, "template_not_found")
    body = {"template": "product-review", "variables": {"nope": 1}}
    assert_error(api.client.post(TEXT, json=body, headers=headers), 422, "template_error")
    assert_error(api.client.get("/api/v1/models/no-such-model", headers=headers), 404)
    assert_error(api.client.get("/api/v1/nothing/here"), 404, "not_found")
    assert_error(api.client.delete("/api/v1/models/list", headers=headers), 405)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/smollm2-135m%0A",  # "$" matched before the newline: answered for the model
        "/api/v1/generate/status/%00",  # a lookup PostgreSQL cannot run
        "/api/v1/auth/api-keys/a%1Fb",
        "/console/jobs/%7F",
    ],
)
def test_a_path_with_a_control_character_is_refused_before_any_route(api: Api, path: str) -> None:
    refused = api.client.get(path, headers=api.headers("alice"))
    error = assert_error(refused, 404)
    assert "the path holds a control character (U+00" in str(error["message"])
    if path.startswith("/v1/"):
        assert error["type"] == "invalid_request_error"  # OpenAI's shape under /v1


@pytest.mark.parametrize(
    "path",
    ["/api/v1/generate/batch/uploads/%FF.jsonl", "/v1/files/file-%C3", "/console/jobs/%E2%82"],
)
def test_a_path_whose_escapes_are_not_utf8_is_refused_before_any_route(api: Api, path: str) -> None:
    """Decoded to U+FFFD, the upload was stored under a name other than the one sent."""
    refused = api.client.put(path, content=b'{"prompt": "hi"}\n', headers=api.headers("alice"))
    error = assert_error(refused, 400)
    assert error["message"] == "the path's percent-escapes are not UTF-8"
    listed = api.client.get("/api/v1/generate/batch/uploads", headers=api.headers("alice"))
    assert all("\ufffd" not in u["name"] for u in listed.json()["uploads"])


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("path", [TEXT, "/v1/completions", "/api/v1/auth/login"])
def test_json_sent_without_its_content_type_is_told_so(
    api: Api, path: str, content_type: str | None
) -> None:
    headers = api.headers("alice")
    if content_type is not None:
        headers["Content-Type"] = content_type
    refused = api.client.post(path, content=b'{"prompt": "hi"}', headers=headers)
    assert refused.status_code in (400, 422), refused.text
    message = refused.json()["error"]["message"]
    assert "send it with 'Content-Type: application/json'" in message, message
    assert repr(content_type or "no content type") in message


def test_bounds_of_the_settings(bounded_api: Api) -> None:
    headers = bounded_api.headers("alice")
    client = bounded_api.client
    too_big = {"prompt": "x" * 5000}
    assert_error(client.post(TEXT, json=too_big, headers=headers), 413, "payload_too_large")
    chunked = iter([b'{"prompt": "', b"x" * 3000, b'"}'])
    response = client.post(
        TEXT, content=chunked, headers={**headers, "Content-Type": "application/json"}
    )
    assert_error(response, 413)
    # Under /console a form too large gets the console's error page, declared or streamed.
    form = {"username": "alice", "password": "x" * 5000}
    assert "body over" in str(
        assert_error(client.post("/console/login", data=form), 413)["message"]
    )
    streamed = iter([b"username=alice&password=", b"x" * 5000])
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    page = client.post("/console/login", content=streamed, headers=form_type)
    assert "body over" in str(assert_error(page, 413)["message"])
    long_prompt = {"prompt": "x" * 150}
    assert_error(client.post(TEXT, json=long_prompt, headers=headers), 422, "invalid_parameter")
    # a job's prompts meet the same bound at submit, not three failed attempts later
    job = {"prompts": ["fine", {"prompt": "x" * 90, "system": "y" * 20}]}
    error = assert_error(client.post(BATCH, json=job, headers=headers), 422, "invalid_parameter")
    assert error["message"] == "prompt 1 is over 100 characters"
    # and a prompt file's at upload (every submit of it failed), named from 1 as its lines
    data = b'{"prompt": "fine"}\n{"prompt": "' + b"x" * 150 + b'"}\n'
    upload = client.put(f"{BATCH}/uploads/long.jsonl", content=data, headers=headers)
    error = assert_error(upload, 422, "invalid_parameter")
    assert error["message"] == "prompt file 'long.jsonl': prompt 2 is over 100 characters"
    assert_error(client.post(TEXT, json={"prompt": "x", "max_tokens": 65}, headers=headers), 422)
    assert_error(client.post(TEXT, json={"prompt": "x", "n": 3}, headers=headers), 422)
    # No model was loaded by any of these.
    assert client.app.state.generation.pool.loaded() == []  # type: ignore[attr-defined]


def test_rate_limit_answers_429_with_retry_after(bounded_api: Api) -> None:
    headers = bounded_api.headers("bob")
    statuses = [
        bounded_api.client.get("/api/v1/models/list", headers=headers).status_code for _ in range(5)
    ]
    assert 429 in statuses
    response = bounded_api.client.get("/api/v1/models/list", headers=headers)
    error = assert_error(response, 429, "quota_exceeded")
    assert int(response.headers["Retry-After"]) >= 1
    assert error["burst"] == 3
    # Alice has her own bucket.
    alice = bounded_api.headers("alice")
    assert bounded_api.client.get("/api/v1/models/list", headers=alice).status_code == 200
    # The WebSocket's handshake takes a token too, and is refused as a route is: 429, not 403.
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        bounded_api.client.websocket_connect("/api/v1/generate/stream", headers=headers),
    ):
        pass
    assert refused.value.status_code == 429 and int(refused.value.headers["Retry-After"]) >= 1
    assert refused.value.json()["error"]["type"] == "quota_exceeded"


def test_wrong_types_on_other_routes(api: Api, tmp_path: Path) -> None:
    headers = api.headers("alice")
    cases = [
        ("/api/v1/auth/login", {"username": 1}),
        ("/api/v1/auth/refresh", {"refresh_token": ""}),
        ("/api/v1/validate/quality", {"texts": []}),
        ("/api/v1/validate/quality", {"texts": "one"}),
        ("/api/v1/validate/similarity", {"candidates": ["a"], "references": ["a", "b"]}),
        ("/api/v1/models/smollm2-135m/invoke", {"prompt": "x", "messages": []}),
        ("/api/v1/models/smollm2-135m/invoke", {"messages": [], "max_tokens": 2}),
        (BATCH, {"template": "product-review", "count": 1, "variables": nested(400)}),
        ("/api/v1/models/smollm2-135m/invoke", {"messages": [{"role": "robot", "content": "x"}]}),
        ("/api/v1/auth/api-keys", {"name": ""}),
        ("/api/v1/validate/quality", {"texts": ["{}"], "json_schema": {"$ref": "#/nope"}}),
        ("/api/v1/validate/quality", {"texts": ["{}"], "json_schema": {"type": 5}}),
    ]
    for path, body in cases:
        assert_error(api.client.post(path, json=body, headers=headers), 422)
    # true is no number (max_cost_usd: true was a cap of $1, count: true one record)
    job = {"template": "product-review", "count": 2}
    for field, value in [("max_cost_usd", True), ("count", True), ("seed", False)]:
        answer = api.client.post(BATCH, json={**job, field: value}, headers=headers)
        assert f"{field}: expected a number" in str(assert_error(answer, 422)["message"])


def test_the_gateway_bridge_is_not_served_without_a_gateway(api: Api) -> None:
    """``POST /api/v1/stream`` posts events back through API Gateway: without its callback URL
    (a server of its own) the route is not there, rather than a 500 after a 202."""
    event = {"X-Connection-Id": "c1", "X-Route-Key": "$connect"}
    token = api.tokens.get("alice") or api.login("alice")
    headers = {**event, "X-Access-Token": token["access_token"]}
    assert_error(api.client.post("/api/v1/stream", headers=headers), 404, "not_found")
    frame = {**headers, "X-Route-Key": "$default"}
    assert_error(api.client.post("/api/v1/stream", json={"prompt": "hi"}, headers=frame), 404)


def test_refreshing_with_an_access_token_says_which_is_expected(api: Api) -> None:
    token = api.tokens.get("alice") or api.login("alice")
    response = api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": token["access_token"]}
    )
    assert "expected a refresh token" in str(assert_error(response, 401)["message"])


def test_a_number_too_long_for_python_is_refused_never_a_500(api: Api) -> None:
    """An integer of over 4300 digits, which Python's ``int`` refuses with a ``ValueError``
    that the JSON readers outside FastAPI's body parser did not expect: 500s on uploads,
    ``/v1/files``, the WebSocket, a console variable; and a schema's ``multipleOf`` divided in
    floats (OverflowError)."""
    client, headers = api.client, api.headers("alice")
    digits = "1" * 5000
    data = f'{{"prompt": "hi", "variables": {{"n": {digits}}}}}\n'.encode()
    upload = client.put(f"{BATCH}/uploads/big.jsonl", content=data, headers=headers)
    assert "a number of 5000 digits is too long" in str(assert_error(upload, 422)["message"])
    chat = '"model": "smollm2-135m", "messages": [{"role": "user", "content": "hi"}]'
    body = f'{{{chat}, "seed": {digits}}}'
    line = f'{{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {body}}}'
    file = ("big.jsonl", line.encode(), "application/jsonl")
    batch = client.post(
        "/v1/files", files={"file": file}, data={"purpose": "batch"}, headers=headers
    )
    assert batch.status_code == 400 and "too long" in batch.json()["error"]["message"]
    token = api.tokens.get("alice") or api.login("alice")
    url = f"/api/v1/generate/stream?access_token={token['access_token']}"
    with client.websocket_connect(url) as socket:
        socket.send_text(f'{{"prompt": "hi", "seed": {digits}}}')
        error = socket.receive_json()["error"]
        assert error["type"] == "validation_error" and "too many digits" in error["message"]
    schema = {"properties": {"a": {"multipleOf": 0.1}}}
    texts = [f'{{"a": {"9" * 400}}}', '{"a": 0.3}', '{"a": 0.35}']
    quality = {"texts": texts, "expect_json": True, "json_schema": schema}
    checked = client.post("/api/v1/validate/quality", json=quality, headers=headers)
    assert checked.status_code == 200, checked.text
    for browser in fresh_browser(client):
        assert log_in(browser).status_code == 303
        page = browser.get(
            "/console/playground", params={"source": "qa-pairs", "var.topic": digits}
        )
        assert page.status_code == 200 and digits in page.text  # the text it was, as text
