"""The API Gateway WebSocket bridge (``POST /api/v1/stream``) with the embedded model: events
posted back through moto's API Gateway Management API, in the shapes of the app's own socket.

moto runs in process here, so the test can read what was posted to a connection (moto keeps
the posted bytes, concatenated). A gone connection is faked at the transport (botocore's
Stubber answers ``GoneException``): moto has no gone connections.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]

from tests.support.api import Api, make_settings, start_api
from textnlp.api import deps
from textnlp.deployment import ORIGIN_VERIFY_HEADER, WEBSOCKET_ORIGIN_HEADER

pytestmark = pytest.mark.slow
CALLBACK = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
STREAM = "/api/v1/stream"
SECRET = "origin-secret-of-the-deployment"


@pytest.fixture(scope="module")
def gateway_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with mock_aws():
        settings = make_settings(
            tmp_path_factory.mktemp("gateway"),
            api={"websocket_callback_url": CALLBACK, "origin_verify": SECRET},
            aws={"region": "us-east-1"},
        )
        for api in start_api(settings):
            api.client.headers[ORIGIN_VERIFY_HEADER] = SECRET  # as both gateways send it
            yield api


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def event(api: Api, route: str, connection: str, body: Any = None, token: str = "") -> Any:
    """An event as the WebSocket API's integration sends it."""
    headers = {"X-Connection-Id": connection, "X-Route-Key": route, WEBSOCKET_ORIGIN_HEADER: SECRET}
    if token:
        headers["X-Access-Token"] = token
    content = json.dumps(body) if isinstance(body, dict) else body
    return api.client.post(STREAM, headers=headers, content=content)


def posted(connection: str) -> list[dict[str, Any]]:
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    data = backend.connections[connection].data.decode()
    decoder, events, at = json.JSONDecoder(), [], 0
    while at < len(data):
        value, at = decoder.raw_decode(data, at)
        events.append(value)
    return events


def wait_for_done(connection: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = posted(connection)
        if events and events[-1]["type"] in {"done", "error"}:
            return events
        time.sleep(0.05)
    raise AssertionError(f"no done event on {connection}: {posted(connection)}")


def token_of(api: Api, user: str) -> str:
    return str(api.headers(user)["Authorization"].removeprefix("Bearer "))


def test_a_gateway_connection_streams_tokens_then_done(gateway_api: Api) -> None:
    token = token_of(gateway_api, "alice")
    assert event(gateway_api, "$connect", "conn-a", token=token).status_code == 200
    frame = {"prompt": "Say hello.", "max_tokens": 6, "temperature": 0.0}
    assert event(gateway_api, "$default", "conn-a", frame).status_code == 202
    events = wait_for_done("conn-a")
    assert [e["type"] for e in events[:-1]] == ["token"] * (len(events) - 1)
    done = events[-1]
    assert done["type"] == "done" and done["model"] == "smollm2-135m"
    assert done["usage"]["completion_tokens"] > 0
    assert "".join(e["text"] for e in events[:-1])
    assert event(gateway_api, "$disconnect", "conn-a").status_code == 200
    # A forgotten connection's frames are refused.
    assert event(gateway_api, "$default", "conn-a", frame).status_code == 401


def test_bad_frames_get_error_events_and_the_connection_stays_usable(gateway_api: Api) -> None:
    token = token_of(gateway_api, "bob")
    assert event(gateway_api, "$connect", "conn-b", token=token).status_code == 200
    assert event(gateway_api, "$default", "conn-b", "{not json").status_code == 202
    error = wait_for_done("conn-b")[-1]
    assert error["type"] == "error"  # as on the app's own WebSocket
    assert error["error"]["type"] == "validation_error" and error["error"]["status"] == 422
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.connections["conn-b"].data = b""
    unknown = {"prompt": "hi", "model": "no-such-model", "max_tokens": 4}
    assert event(gateway_api, "$default", "conn-b", unknown).status_code == 202
    assert wait_for_done("conn-b")[-1]["error"]["type"] == "model_not_found"
    backend.connections["conn-b"].data = b""
    good = {"prompt": "Say hi.", "max_tokens": 4, "temperature": 0.0}
    assert event(gateway_api, "$default", "conn-b", good).status_code == 202
    assert wait_for_done("conn-b")[-1]["type"] == "done"


def test_only_the_websocket_api_calls_the_bridge(gateway_api: Api) -> None:
    """The REST API forwards a client's own headers (with the origin secret it adds itself):
    a forged connection id and route key must not act on another user's connection."""
    token = token_of(gateway_api, "alice")
    assert event(gateway_api, "$connect", "conn-victim", token=token).status_code == 200
    forged = {"X-Connection-Id": "conn-victim", "X-Route-Key": "$default"}
    for extra in ({}, {WEBSOCKET_ORIGIN_HEADER: "guessed"}):
        for route in ("$default", "$disconnect", "$connect"):
            refused = gateway_api.client.post(
                STREAM,
                headers={**forged, **extra, "X-Route-Key": route},
                json={"prompt": "attacker prompt", "max_tokens": 4},
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["type"] == "permission_denied"
    # The victim's connection is still theirs and nothing was posted to it.
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    assert "conn-victim" not in backend.connections  # moto keeps a connection once posted to
    frame = {"prompt": "Say hi.", "max_tokens": 4, "temperature": 0.0}
    assert event(gateway_api, "$default", "conn-victim", frame).status_code == 202
    assert wait_for_done("conn-victim")[-1]["type"] == "done"


def test_connect_checks_the_credential_itself(gateway_api: Api) -> None:
    assert event(gateway_api, "$connect", "conn-c").status_code == 401
    assert event(gateway_api, "$connect", "conn-c", token="forged.token.here").status_code == 401
    assert event(gateway_api, "$default", "conn-c", {"prompt": "x"}).status_code == 401


def test_a_connection_ends_with_its_credential(
    gateway_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A logout after $connect: the next frame is refused, the client told why and its
    connection closed (deleted through the Management API) and forgotten."""
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    last_words: dict[str, bytes] = {}
    delete = backend.delete_connection

    def keep_last_words(connection_id: str) -> None:
        last_words[connection_id] = backend.connections[connection_id].data
        delete(connection_id)

    monkeypatch.setattr(backend, "delete_connection", keep_last_words)
    pair = gateway_api.login("bob")
    assert event(gateway_api, "$connect", "conn-out", token=pair["access_token"]).status_code == 200
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    assert gateway_api.client.post("/api/v1/auth/logout", headers=bearer).status_code == 200
    frame = {"prompt": "Say hi.", "max_tokens": 4}
    refused = event(gateway_api, "$default", "conn-out", frame)
    assert refused.status_code == 401 and "token revoked" in refused.text
    told = json.loads(last_words["conn-out"])
    assert told["type"] == "error" and told["error"]["type"] == "authentication_error"
    streams = gateway_api.client.app.state.gateway_streams  # type: ignore[attr-defined]
    assert streams.owner("conn-out") is None
    assert event(gateway_api, "$default", "conn-out", frame).status_code == 401


def test_a_generation_does_not_outlive_its_credential(
    gateway_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A logout while the connection streams: the generation stops, the client is told why
    and the connection closed (not at its next frame)."""
    monkeypatch.setattr(deps, "RECHECK_S", 0.05)
    pair = gateway_api.login("bob")
    assert event(gateway_api, "$connect", "conn-mid", token=pair["access_token"]).status_code == 200
    frame = {"prompt": "List one hundred animals, one per line.", "max_tokens": 400}
    assert event(gateway_api, "$default", "conn-mid", frame).status_code == 202
    deadline = time.monotonic() + 30
    while "conn-mid" not in backend_connections() and time.monotonic() < deadline:
        time.sleep(0.02)  # the first token posted
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    assert gateway_api.client.post("/api/v1/auth/logout", headers=bearer).status_code == 200
    streams = gateway_api.client.app.state.gateway_streams  # type: ignore[attr-defined]
    while streams.owner("conn-mid") is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert streams.owner("conn-mid") is None and not streams._tasks  # forgotten, stopped
    assert "conn-mid" not in backend_connections()  # deleted through the Management API


def backend_connections() -> dict[str, Any]:
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return dict(backend.connections)


def test_a_gone_connection_cancels_its_generation(gateway_api: Api) -> None:
    streams = gateway_api.client.app.state.gateway_streams  # type: ignore[attr-defined]
    client = boto3.client("apigatewaymanagementapi", endpoint_url=CALLBACK, region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error(
        "post_to_connection", service_error_code="GoneException", http_status_code=410
    )
    stubber.activate()
    previous, streams._client = streams._client, client
    try:
        token = token_of(gateway_api, "alice")
        assert event(gateway_api, "$connect", "conn-gone", token=token).status_code == 200
        frame = {"prompt": "Count to twenty.", "max_tokens": 40, "temperature": 0.0}
        assert event(gateway_api, "$default", "conn-gone", frame).status_code == 202
        deadline = time.monotonic() + 30
        while streams._tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not streams._tasks  # stopped at the first refused post, not after 40 tokens
        stubber.assert_no_pending_responses()
        assert streams.owner("conn-gone") is None  # and forgotten
    finally:
        streams._client = previous
        stubber.deactivate()


def test_stream_route_is_in_the_schema(gateway_api: Api, tmp_path: Path) -> None:
    schema = gateway_api.client.get("/openapi.json").json()
    operation = schema["paths"][STREAM]["post"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"X-Connection-Id", "X-Route-Key", "X-Access-Token"} <= names
