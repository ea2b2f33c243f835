"""One user's WebSockets are bounded: a client holding idle sockets must not take the
connections every client shares (2,048 idle sockets of one API key made every request and the
health probe answer 503). The bound is per user, keys and tokens together; an idle socket is
closed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from tests.support.api import Api, make_settings, start_api
from tests.support.job_backends import MODELS_YAML, register

STREAM = "/api/v1/generate/stream"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home: Path = tmp_path_factory.mktemp("open-sockets")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    settings = make_settings(
        home, models_file=models, api={"max_websockets_per_user": 2, "websocket_idle_s": 0.3}
    )
    yield from start_api(settings)


def test_a_user_holds_at_most_the_bound_keys_and_tokens_together(api: Api) -> None:
    key = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "sockets"}, headers=api.headers("alice")
    ).json()["key"]
    with ExitStack() as held:
        held.enter_context(api.client.websocket_connect(STREAM, headers=api.headers("alice")))
        held.enter_context(api.client.websocket_connect(STREAM, headers={"X-API-Key": key}))
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            api.client.websocket_connect(STREAM, headers=api.headers("alice")),
        ):
            pass
        assert refused.value.status_code == 429
        assert "WebSockets are open for you already" in refused.value.json()["error"]["message"]
        # Another user's sockets are theirs to count.
        with api.client.websocket_connect(STREAM, headers=api.headers("bob")) as bobs:
            bobs.send_text(json.dumps({"prompt": "hi", "model": "fake-fast", "max_tokens": 2}))
            assert bobs.receive_json()["type"] in ("token", "done")
    # Closed: room again.
    with api.client.websocket_connect(STREAM, headers=api.headers("alice")) as again:
        again.send_text(json.dumps({"prompt": "hi", "model": "fake-fast", "max_tokens": 2}))
        assert again.receive_json()["type"] in ("token", "done")


def test_a_socket_without_requests_is_closed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("textnlp.api.routers.stream.RECHECK_S", 0.1)
    with (
        api.client.websocket_connect(STREAM, headers=api.headers("alice")) as idle,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        idle.receive_json()
    assert closed.value.code == 1001 and "idle" in closed.value.reason
