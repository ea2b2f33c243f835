"""Generation with the embedded model: completions, cache, templates, SSE, WebSocket, invoke.

One app (SQLite) for the module, so the model loads once; every request asks for few tokens.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from tests.support.api import Api
from textnlp.api import deps
from textnlp.api.routers import stream

pytestmark = pytest.mark.slow
TEXT = "/api/v1/generate/text"
SHORT = {"max_tokens": 6, "temperature": 0.0}


def test_completion_has_the_completions_shape_and_is_cached(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    body = {"prompt": "Say hello.", **SHORT}
    first = sqlite_api.client.post(TEXT, json=body, headers=headers)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["object"] == "text_completion" and answer["model"] == "smollm2-135m"
    assert answer["id"].startswith("cmpl-") and isinstance(answer["created"], int)
    choice = answer["choices"][0]
    assert choice["index"] == 0 and choice["text"] and choice["finish_reason"] in {"stop", "length"}
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert answer["cached"] is False
    again = sqlite_api.client.post(TEXT, json=body, headers=headers).json()
    assert again["cached"] is True and again["choices"] == answer["choices"]
    assert again["id"] != answer["id"]
    # A sampled request without a seed is never served from the cache.
    sampled = sqlite_api.client.post(TEXT, json={**body, "temperature": 0.9}, headers=headers)
    assert sampled.json()["cached"] is False


def test_template_with_variables_and_n_choices(sqlite_api: Api) -> None:
    body = {
        "template": "product-review",
        "variables": {"rating": 5},
        "n": 2,
        "seed": 7,
        "max_tokens": 5,
    }
    answer = sqlite_api.client.post(TEXT, json=body, headers=sqlite_api.headers("bob")).json()
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    assert answer["usage"]["completion_tokens"] <= 10


def test_server_sent_events(sqlite_api: Api) -> None:
    body = {"prompt": "Count to three.", "max_tokens": 6, "stream": True}
    with sqlite_api.client.stream(
        "POST", TEXT, json=body, headers=sqlite_api.headers("alice")
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    # "in the same shape" as the completion: created too, the same in every chunk
    assert len({c["created"] for c in chunks}) == 1 and chunks[0]["created"] > 0
    assert chunks[-1]["usage"]["completion_tokens"] >= 1
    assert "".join(c["choices"][0]["text"] for c in chunks)


def test_a_native_stream_that_cannot_start_answers_an_http_error(sqlite_api: Api) -> None:
    """What fails before the first token (the context window) is a status, not a 200 whose
    body is an error event."""
    body = {"prompt": "x" * 20, "max_tokens": 2048, "stream": True}
    response = sqlite_api.client.post(
        "/api/v1/generate/text", json=body, headers=sqlite_api.headers("alice")
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "context_window_exceeded"


def test_the_websocket_is_in_the_schema_and_plain_http_is_told_to_upgrade(
    sqlite_api: Api,
) -> None:
    """It was missing from /openapi.json, and a plain GET answered 404 as if it did not exist."""
    schema = sqlite_api.client.get("/openapi.json").json()
    handshake = schema["paths"]["/api/v1/generate/stream"]["get"]
    assert {"101", "401", "426", "429"} <= set(handshake["responses"])
    assert "text frame" in handshake["description"]
    answer = sqlite_api.client.get("/api/v1/generate/stream")
    assert answer.status_code == 426 and answer.headers["upgrade"] == "websocket"
    assert answer.json()["error"]["type"] == "upgrade_required"


def test_websocket_streams_tokens_then_usage(sqlite_api: Api) -> None:
    token = sqlite_api.tokens.get("alice") or sqlite_api.login("alice")
    url = f"/api/v1/generate/stream?access_token={token['access_token']}"
    with sqlite_api.client.websocket_connect(url) as socket:
        for _ in range(2):  # several requests on one connection
            socket.send_text(json.dumps({"prompt": "Hello!", "max_tokens": 5}))
            messages = []
            while True:
                message = socket.receive_json()
                messages.append(message)
                if message["type"] != "token":
                    break
            assert messages[-1]["type"] == "done", messages
            assert any(m["type"] == "token" for m in messages)
        socket.send_text(json.dumps({"prompt": "x", "temperature": 9}))
        assert socket.receive_json()["error"]["type"] == "validation_error"
        socket.send_text(json.dumps({"prompt": "x", "model": "nope"}))
        assert socket.receive_json()["error"]["type"] == "model_not_found"
        socket.send_text(json.dumps({"prompt": "x", "n": 2}))  # one stream, one choice
        assert "n = 1" in socket.receive_json()["error"]["message"]
        socket.send_text("{not json")
        assert socket.receive_json()["type"] == "error"


def ask(socket: Any, prompt: str = "Hi") -> list[dict[str, Any]]:
    """One request on a socket: its events up to the first that is not a token."""
    socket.send_text(json.dumps({"prompt": prompt, "max_tokens": 2}))
    events = [socket.receive_json()]
    while events[-1]["type"] == "token":
        events.append(socket.receive_json())
    return events


def test_a_socket_ends_with_its_credential(sqlite_api: Api) -> None:
    """A logout, a revoked key: the open socket's next request is refused and it closes."""
    pair = sqlite_api.login("bob")
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    made = sqlite_api.client.post("/api/v1/auth/api-keys", json={"name": "ws"}, headers=bearer)
    assert made.status_code == 201, made.text
    key = made.json()
    by_token = f"/api/v1/generate/stream?access_token={pair['access_token']}"
    with (
        sqlite_api.client.websocket_connect(by_token) as token_socket,
        sqlite_api.client.websocket_connect(
            "/api/v1/generate/stream", headers={"X-API-Key": key["key"]}
        ) as key_socket,
    ):
        assert ask(token_socket)[-1]["type"] == "done"
        assert ask(key_socket)[-1]["type"] == "done"
        revoke = sqlite_api.client.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=bearer)
        assert revoke.status_code == 200, revoke.text
        assert sqlite_api.client.post("/api/v1/auth/logout", headers=bearer).status_code == 200
        for socket in (token_socket, key_socket):
            refused = ask(socket)
            assert [e["type"] for e in refused] == ["error"], refused
            assert refused[0]["error"]["type"] == "authentication_error"
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 1008


#: A long answer every time: greedy (a sampled one sometimes ended after 4 tokens, before any
#: recheck); each test adds its own words, so that none is answered from the cache.
LONG = {"prompt": "List one hundred animals, one per line.", "max_tokens": 400, "temperature": 0}


def new_key(api: Api, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(bob's bearer headers, a new API key of bob's)."""
    bearer = {"Authorization": f"Bearer {api.login('bob')['access_token']}"}
    made = api.client.post("/api/v1/auth/api-keys", json={"name": name}, headers=bearer)
    assert made.status_code == 201, made.text
    return bearer, made.json()


def test_an_open_socket_does_not_outlive_its_credential(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoked mid-generation and while idle: each socket is told and closed within the
    recheck interval, the generation stopped; nothing is sent to the idle one."""
    monkeypatch.setattr(deps, "RECHECK_S", 0.05)
    monkeypatch.setattr(stream, "RECHECK_S", 0.05)
    bearer, key = new_key(sqlite_api, "ws-recheck")
    headers = {"X-API-Key": key["key"]}
    url = "/api/v1/generate/stream"
    with (
        sqlite_api.client.websocket_connect(url, headers=headers) as idle,
        sqlite_api.client.websocket_connect(url, headers=headers) as busy,
    ):
        busy.send_text(json.dumps(LONG))
        assert busy.receive_json()["type"] == "token"
        revoke = sqlite_api.client.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=bearer)
        assert revoke.status_code == 200, revoke.text
        for socket in (busy, idle):
            events = [socket.receive_json()]
            while events[-1]["type"] == "token":
                events.append(socket.receive_json())
            assert events[-1]["type"] == "error", events[-1]  # not "done": it was stopped
            assert events[-1]["error"]["type"] == "authentication_error"
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 1008


def test_a_server_sent_stream_does_not_outlive_its_credential(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps, "RECHECK_S", 0.05)
    bearer, key = new_key(sqlite_api, "sse-recheck")
    body = {**LONG, "prompt": f"{LONG['prompt']} Number them.", "stream": True}
    with sqlite_api.client.stream(
        "POST", TEXT, json=body, headers={"X-API-Key": key["key"]}
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert json.loads(first[6:])["choices"][0]["text"] is not None
        revoked = sqlite_api.client.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=bearer)
        assert revoked.status_code == 200
        rest = list(lines)
    errors = [line for line in rest if line.startswith("event: error")]
    assert errors, rest[-5:]
    data = [json.loads(line[6:]) for line in rest if line.startswith("data: {")]
    assert data[-1]["error"]["type"] == "authentication_error"
    assert not any(d.get("choices", [{}])[0].get("finish_reason") for d in data[:-1])


def test_websocket_refuses_bad_credentials(sqlite_api: Api) -> None:
    url = "/api/v1/generate/stream?access_token=bad"
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        sqlite_api.client.websocket_connect(url),
    ):
        pass
    assert refused.value.status_code == 401  # the answer an HTTP route gives, in its shape
    assert refused.value.json()["error"]["type"] == "authentication_error"
    # Counted (and logged) as the refusal the client saw, not as a server error.
    metrics = sqlite_api.client.app.state.metrics.render().decode()  # type: ignore[attr-defined]
    assert 'route="/api/v1/generate/stream",status="401"' in metrics
    assert 'route="/api/v1/generate/stream",status="500"' not in metrics


def test_models_list_describe_and_invoke(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    listed = sqlite_api.client.get("/api/v1/models/list", headers=headers).json()
    ids = [m["id"] for m in listed["data"]]
    assert "smollm2-135m" in ids and listed["object"] == "list"
    info = sqlite_api.client.get("/api/v1/models/smollm2-135m", headers=headers).json()
    assert info["context_length"] > 0 and info["available"] is True
    invoked = sqlite_api.client.post(
        "/api/v1/models/smollm2-135m/invoke",
        json={"messages": [{"role": "user", "content": "Hi"}], **SHORT},
        headers=headers,
    )
    assert invoked.status_code == 200, invoked.text
    assert invoked.json()["choices"][0]["text"]


def test_metrics_count_tokens_and_cache_hits(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    body = {"prompt": "Metrics please.", **SHORT}
    sqlite_api.client.post(TEXT, json=body, headers=headers)
    sqlite_api.client.post(TEXT, json=body, headers=headers)
    assert sqlite_api.client.get("/docs").status_code == 200
    text = sqlite_api.client.get("/api/v1/admin/metrics", headers=sqlite_api.headers("admin")).text
    assert 'route="/docs"' in text  # FastAPI's own pages were counted as "unmatched"
    assert 'textnlp_tokens_generated_total{model="smollm2-135m"}' in text
    assert 'textnlp_cache_lookups_total{result="hit"}' in text
    assert 'route="/api/v1/generate/text"' in text and 'status="200"' in text
    cleared = sqlite_api.client.post(
        "/api/v1/admin/cache/clear", headers=sqlite_api.headers("admin")
    )
    assert cleared.json()["cleared"] >= 1
    assert sqlite_api.client.post(TEXT, json=body, headers=headers).json()["cached"] is False
