"""Limits that could be walked around: a forged ``X-Forwarded-For`` or ``X-Viewer-Address``, many
addresses against one account, many accounts from one address, API keys that multiply a user's
limit or mint more keys, and a WebSocket that serves generations beyond its handshake's one
token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import PASSWORD, make_settings
from textnlp.api.app import create_app
from textnlp.deployment import ORIGIN_VERIFY_HEADER, VIEWER_ADDRESS_HEADER, VIEWER_VERIFY_HEADER

LOGIN = "/api/v1/auth/login"
KEYS = "/api/v1/auth/api-keys"
MODELS = "/api/v1/models/list"
#: The peer of every request here: the load balancer, in the VPC.
PROXY = ("10.0.1.5", 40000)


#: The login limits' bursts as configured by default, refilling too slowly to matter here: the
#: tests count refusals, and a slow machine's guesses must not earn tokens back meanwhile.
SLOW_REFILL = {"login_limit_per_username": (0.0001, 10), "login_limit_per_address": (0.0001, 30)}


def client_for(home: Path, **api: Any) -> Iterator[TestClient]:
    app = create_app(make_settings(home, api={**SLOW_REFILL, **api}))
    with TestClient(app, raise_server_exceptions=False, client=PROXY) as client:
        for name in ("alice", "bob", *(f"user{n}" for n in range(40))):
            app.state.auth.create_user(name, PASSWORD)
        yield client


@pytest.fixture
def direct(tmp_path: Path) -> Iterator[TestClient]:
    """No trusted proxies (the default): whatever ``X-Forwarded-For`` says is ignored."""
    yield from client_for(tmp_path)


@pytest.fixture
def behind_alb(tmp_path: Path) -> Iterator[TestClient]:
    yield from client_for(tmp_path, trusted_proxies=["10.0.0.0/16"])


def guess(client: TestClient, username: str, forwarded_for: str) -> int:
    response = client.post(
        LOGIN,
        json={"username": username, "password": "wrong-guess"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    if response.status_code == 429:
        assert response.json()["error"]["type"] == "quota_exceeded"
        assert int(response.headers["Retry-After"]) >= 1
    return response.status_code


def test_a_forged_forwarded_for_buys_no_guesses(direct: TestClient) -> None:
    statuses = [guess(direct, "alice", f"192.0.2.{n}") for n in range(30)]
    assert statuses.count(401) == 10  # the username's burst
    assert statuses[10:] == [429] * 20


def test_one_account_from_many_addresses_is_bounded(behind_alb: TestClient) -> None:
    statuses = [guess(behind_alb, "alice", f"198.51.100.{n}") for n in range(30)]
    assert statuses == [401] * 10 + [429] * 20
    # Another account is not locked by alice's guesses.
    assert guess(behind_alb, "bob", "198.51.100.99") == 401


def test_guesses_from_elsewhere_do_not_lock_a_user_out(behind_alb: TestClient) -> None:
    # Ten wrong passwords for alice, from anyone, then one every ten seconds, kept her out of
    # her own account: her right password answered 429 with the guessers'.
    home = "203.0.113.20"

    def login(forwarded_for: str) -> int:
        answer = behind_alb.post(
            LOGIN,
            json={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return answer.status_code

    assert login(home) == 200
    statuses = [guess(behind_alb, "alice", f"198.51.100.{n}") for n in range(30)]
    assert statuses == [401] * 9 + [429] * 21  # the shared bucket, less alice's own login
    assert login(home) == 200
    # Where alice logged in, guesses have a bucket of their own, as bounded.
    mine = [guess(behind_alb, "alice", home) for _ in range(12)]
    assert mine == [401] * 9 + [429] * 3  # the burst, less alice's login from there
    # A place alice never logged in from is still locked with the shared bucket.
    assert login("198.51.100.200") == 429


def test_many_accounts_from_one_address_are_bounded(behind_alb: TestClient) -> None:
    # The client's own claim (left of the ALB's hop) changes nothing.
    statuses = [guess(behind_alb, f"user{n}", f"10.9.9.{n}, 203.0.113.7") for n in range(40)]
    assert statuses == [401] * 30 + [429] * 10
    # Other clients behind the same ALB keep their own buckets.
    assert guess(behind_alb, "user39", "203.0.113.8") == 401
    ok = behind_alb.post(
        LOGIN, json={"username": "bob", "password": PASSWORD}, headers={"X-Forwarded-For": "::1"}
    )
    assert ok.status_code == 200


def test_behind_the_gateway_the_edge_limits_addresses(tmp_path: Path) -> None:
    # The deployment's setting: every request comes from the gateway, whose WAF (which sees
    # the viewer) limits per address; the app must not put all users in the gateway's bucket.
    for client in client_for(tmp_path, login_limit_per_address=None):
        statuses = [guess(client, f"user{n}", "203.0.113.7") for n in range(40)]
        assert statuses == [401] * 40
        # The per-username limit still holds.
        assert [guess(client, "alice", "203.0.113.7") for _ in range(12)][10:] == [429, 429]


def test_behind_the_gateway_a_login_there_buys_no_guesses(tmp_path: Path) -> None:
    # With the edge limiting addresses, the app's peer is a gateway node, shared by everyone:
    # an address alice logged in through is every guesser's too. Remembering it gave each
    # node alice used a fresh bucket of her name (26 wrong guesses here, not 8), and did not
    # keep the guessers' tokens away from her anyway.
    app = create_app(make_settings(tmp_path, api={**SLOW_REFILL, "login_limit_per_address": None}))
    options: dict[str, Any] = {"raise_server_exceptions": False}
    with TestClient(app, client=("10.0.1.5", 40000), **options) as node_a:
        app.state.auth.create_user("alice", PASSWORD)
        node_b = TestClient(app, client=("10.0.2.9", 40000), **options)
        node_c = TestClient(app, client=("10.0.3.7", 40000), **options)
        for node in (node_a, node_b):
            answer = node.post(LOGIN, json={"username": "alice", "password": PASSWORD})
            assert answer.status_code == 200
        statuses = [
            node.post(LOGIN, json={"username": "alice", "password": "wrong-guess"}).status_code
            for node in (node_a, node_b, node_c)
            for _ in range(12)
        ]
        assert statuses.count(401) == 8  # the username's burst, less alice's two logins


GATEWAY_SECRET = "the-gateways-origin-secret"
EDGE_SECRET = "the-distributions-viewer-secret"


@pytest.fixture
def behind_edge(tmp_path: Path) -> Iterator[TestClient]:
    """The deployment: every request passed API Gateway (its origin header) and reaches the app
    from the ALB; those that came through CloudFront carry its secret and the viewer's address,
    and the app's per-address limit is on."""
    settings = {"origin_verify": GATEWAY_SECRET, "viewer_verify": EDGE_SECRET}
    for client in client_for(tmp_path, **settings):
        client.headers[ORIGIN_VERIFY_HEADER] = GATEWAY_SECRET
        yield client


def via_edge(viewer: str) -> dict[str, str]:
    return {VIEWER_VERIFY_HEADER: EDGE_SECRET, VIEWER_ADDRESS_HEADER: viewer}


def attempt(client: TestClient, username: str, password: str, headers: dict[str, str]) -> int:
    answer = client.post(LOGIN, json={"username": username, "password": password}, headers=headers)
    return answer.status_code


def test_behind_the_edge_guesses_from_elsewhere_do_not_lock_a_user_out(
    behind_edge: TestClient,
) -> None:
    # Behind the gateway the app could not tell viewers apart: anyone's ten wrong passwords for
    # alice kept her out. The edge's viewer address gives her own address its own bucket again.
    home = "203.0.113.20"
    assert attempt(behind_edge, "alice", PASSWORD, via_edge(home)) == 200
    guesses = [
        attempt(behind_edge, "alice", "wrong", via_edge(f"198.51.100.{n}")) for n in range(30)
    ]
    assert guesses == [401] * 9 + [429] * 21  # the shared bucket, less alice's own login
    # Sent to API Gateway's own URL, around the distribution, claiming alice's address: without
    # the edge's secret (or with a guess at it) the claim is ignored, and the shared bucket pays.
    forged = [{VIEWER_ADDRESS_HEADER: home}, {**via_edge(home), VIEWER_VERIFY_HEADER: "a-guess"}]
    assert [attempt(behind_edge, "alice", "wrong", h) for h in forged for _ in range(5)] == (
        [429] * 10
    )
    assert attempt(behind_edge, "alice", PASSWORD, via_edge(home)) == 200
    # Her address's bucket is as she left it: none of the forged guesses were counted there.
    mine = [attempt(behind_edge, "alice", "wrong", via_edge(home)) for _ in range(12)]
    assert mine == [401] * 9 + [429] * 3
    assert attempt(behind_edge, "alice", PASSWORD, via_edge("198.51.100.200")) == 429


def test_behind_the_edge_many_accounts_from_one_viewer_are_bounded(
    behind_edge: TestClient,
) -> None:
    statuses = [
        attempt(behind_edge, f"user{n}", "wrong", via_edge("203.0.113.7")) for n in range(40)
    ]
    assert statuses == [401] * 30 + [429] * 10
    # Another viewer keeps its own bucket.
    assert attempt(behind_edge, "user39", "wrong", via_edge("203.0.113.8")) == 401


def test_around_the_edge_a_forged_viewer_address_buys_no_guesses(behind_edge: TestClient) -> None:
    # Each claims another address, without the edge's secret: all are counted at the app's peer.
    def forged(n: int) -> dict[str, str]:
        claim = {VIEWER_ADDRESS_HEADER: f"192.0.2.{n}"}
        return claim if n % 2 else {**claim, VIEWER_VERIFY_HEADER: f"guess-{n}"}

    statuses = [attempt(behind_edge, f"user{n}", "wrong", forged(n)) for n in range(40)]
    assert statuses == [401] * 30 + [429] * 10


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post(LOGIN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_api_keys_are_capped_and_cannot_mint_keys(tmp_path: Path) -> None:
    for client in client_for(tmp_path, max_api_keys_per_user=3):
        alice = login(client, "alice")
        keys = [client.post(KEYS, json={"name": f"k{n}"}, headers=alice) for n in range(4)]
        assert [r.status_code for r in keys] == [201, 201, 201, 409]
        assert keys[3].json()["error"]["type"] == "conflict"
        # A key cannot make keys (which would outlive its own revocation).
        minted = client.post(KEYS, json={"name": "m"}, headers={"X-API-Key": keys[0].json()["key"]})
        assert minted.status_code == 403 and minted.json()["error"]["type"] == "permission_denied"
        # A revoked key frees its place.
        assert client.delete(f"{KEYS}/{keys[0].json()['id']}", headers=alice).status_code == 200
        assert client.post(KEYS, json={"name": "k4"}, headers=alice).status_code == 201


def test_api_keys_share_their_owners_bucket(tmp_path: Path) -> None:
    for client in client_for(tmp_path, user_rate_limits={"alice": [0.001, 6]}):
        alice = login(client, "alice")
        keys = [
            {"X-API-Key": client.post(KEYS, json={"name": f"k{n}"}, headers=alice).json()["key"]}
            for n in range(3)
        ]  # 3 of alice's 6 tokens
        statuses = [client.get(MODELS, headers=h).status_code for h in [*keys, alice] * 2]
        assert statuses.count(200) == 3 and statuses.count(429) == 5


def test_every_websocket_frame_takes_a_token(tmp_path: Path) -> None:
    for client in client_for(tmp_path, user_rate_limits={"bob": [0.001, 3]}):
        bob = login(client, "bob")
        with client.websocket_connect("/api/v1/generate/stream", headers=bob) as ws:  # 1 token
            answers = []
            for _ in range(4):
                ws.send_text("not a request")
                answers.append(ws.receive_json()["error"])
        assert [a["type"] for a in answers] == [
            "validation_error",  # frames 1 and 2 are requests (bad ones), each took a token
            "validation_error",
            "quota_exceeded",  # the bucket is empty: no generation, the socket stays open
            "quota_exceeded",
        ]
        assert answers[2]["status"] == 429 and answers[2]["retry_after"] > 0
