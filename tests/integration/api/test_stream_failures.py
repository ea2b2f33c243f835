"""A model that fails with an exception outside the error tree (a bug, a driver's surprise):
before its first token the SSE request answers a 500; after it, the stream ends with an
``error`` event and ``[DONE]``; the WebSocket answers an error event and stays usable; all say
``internal_error`` without detail (the log has it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api, make_settings, start_api
from tests.support.job_backends import MODELS_YAML, register


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home: Path = tmp_path_factory.mktemp("stream-failures")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    yield from start_api(make_settings(home, models_file=models))


def test_sse_that_fails_before_its_first_token_is_a_500(api: Api) -> None:
    body = {"prompt": "hi", "model": "poison", "max_tokens": 4, "stream": True}
    response = api.client.post("/api/v1/generate/text", json=body, headers=api.headers("alice"))
    assert response.status_code == 500
    assert response.json() == {"error": {"type": "internal_error", "message": "internal error"}}


def test_sse_ends_with_an_internal_error_event(api: Api) -> None:
    body = {"prompt": "hi", "model": "fails-mid-stream", "max_tokens": 4, "stream": True}
    with api.client.stream(
        "POST", "/api/v1/generate/text", json=body, headers=api.headers("alice")
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    events = [block for block in text.split("\n\n") if block]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0].removeprefix("data: "))["choices"][0]["text"] == "Hello "
    kind, data = events[-2].split("\n")
    assert kind == "event: error"
    error = json.loads(data.removeprefix("data: "))["error"]
    assert error == {"type": "internal_error", "message": "internal error", "status": 500}


def test_websocket_answers_an_internal_error_and_stays_open(api: Api) -> None:
    with api.client.websocket_connect(
        "/api/v1/generate/stream", headers=api.headers("alice")
    ) as ws:
        ws.send_text(json.dumps({"prompt": "hi", "model": "poison", "max_tokens": 4}))
        assert ws.receive_json()["error"]["type"] == "internal_error"
        ws.send_text(json.dumps({"prompt": "hi", "model": "fake-fast", "max_tokens": 4}))
        events: list[dict] = []
        while not events or events[-1]["type"] not in ("done", "error"):
            events.append(ws.receive_json())
        assert events[-1]["type"] == "done"
