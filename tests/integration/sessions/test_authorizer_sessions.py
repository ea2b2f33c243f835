"""The Lambda authorizer against the DynamoDB session store (moto's server): a logged-out or
revoked token is denied at the gateway, an unreadable table denies everything (fail closed),
and the read is an X-Ray subsegment of the function's segment (the design's "Lambda ->
DynamoDB (Session Store)" edge), sent to a UDP socket standing in for the X-Ray daemon."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from tests.conftest import free_port
from tests.support.sessions import create_session_table, dynamodb
from textnlp.adapters.sessions.dynamodb import DynamoDbSessionStore
from textnlp.auth.tokens import TokenPair, TokenService
from textnlp.config import AuthSettings, env_name
from textnlp.lambdas import authorizer

SECRET = "s" * 64
REST_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/api/v1/models/list"
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@dataclass
class Gateway:
    tokens: TokenService
    store: DynamoDbSessionStore
    table: str

    def login(self, user_id: str = "user-1") -> TokenPair:
        pair = self.tokens.issue_pair(user_id, "user")
        claims = pair.refresh_claims
        self.store.start_family(claims.family, user_id, claims.jti, float(claims.exp))
        return pair


@pytest.fixture
def gateway(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    client = dynamodb(aws_env)
    table = create_session_table(client)
    monkeypatch.setenv(env_name("auth", "jwt_secret"), SECRET)
    monkeypatch.setenv(env_name("auth", "session_store"), "dynamodb")
    monkeypatch.setenv(env_name("auth", "session_table"), table)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    authorizer.reset()
    tokens = TokenService(AuthSettings(jwt_secret=SecretStr(SECRET)))
    yield Gateway(tokens, DynamoDbSessionStore(client, table, lambda _: None), table)
    authorizer.reset()


def effect(credential: str) -> str:
    answer = authorizer.handler(
        {"type": "TOKEN", "authorizationToken": f"Bearer {credential}", "methodArn": REST_ARN}
    )
    (statement,) = answer["policyDocument"]["Statement"]
    return str(statement["Effect"])


def test_a_live_session_is_allowed(gateway: Gateway) -> None:
    assert effect(gateway.login().access_token) == "Allow"


def test_a_logged_out_token_is_denied(gateway: Gateway) -> None:
    pair = gateway.login()
    other = gateway.login()
    gateway.store.revoke_jti(pair.access_claims.jti, float(pair.access_claims.exp))
    assert effect(pair.access_token) == "Deny"
    assert effect(other.access_token) == "Allow"  # another session of the same user


def test_a_revoked_family_denies_its_every_token(gateway: Gateway) -> None:
    pair = gateway.login()
    rotated = gateway.tokens.issue_pair("user-1", "user", family=pair.refresh_claims.family)
    gateway.store.revoke_family(pair.refresh_claims.family)
    assert effect(pair.access_token) == "Deny"
    assert effect(rotated.access_token) == "Deny"


def test_a_token_of_no_stored_session_is_denied(gateway: Gateway) -> None:
    # Signed with the right key, but no login stored it (or its item expired).
    assert effect(gateway.tokens.issue_pair("user-1", "user").access_token) == "Deny"


def test_api_keys_pass_without_a_lookup(gateway: Gateway) -> None:
    from textnlp.auth.api_keys import generate_api_key

    assert effect(generate_api_key().plaintext) == "Allow"


@pytest.mark.parametrize("failure", ["unreachable", "no table"])
def test_an_unreadable_table_denies(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    pair = gateway.login()
    if failure == "unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    else:
        monkeypatch.setenv(env_name("auth", "session_table"), "no-such-table")
    authorizer.reset()
    assert effect(pair.access_token) == "Deny"


@pytest.fixture
def xray_daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    host, port = daemon.getsockname()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"{host}:{port}")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    yield daemon
    daemon.close()


def received(daemon: socket.socket) -> dict[str, Any]:
    header, _, body = daemon.recv(65536).decode().partition("\n")
    assert json.loads(header) == {"format": "json", "version": 1}
    document: dict[str, Any] = json.loads(body)
    return document


def test_the_lookup_is_an_xray_subsegment_of_the_function(
    gateway: Gateway, xray_daemon: socket.socket
) -> None:
    started = time.time()
    assert effect(gateway.login().access_token) == "Allow"
    document = received(xray_daemon)
    assert document["type"] == "subsegment" and document["namespace"] == "aws"
    assert document["name"] == "DynamoDB"
    assert document["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert document["parent_id"] == "53995c3f42cd8ad8"
    assert document["aws"]["operation"] == "BatchGetItem"
    assert document["aws"]["table_names"] == [gateway.table]
    assert started <= document["start_time"] <= document["end_time"] <= time.time()
    assert "fault" not in document


def test_a_failed_lookup_is_a_faulted_subsegment(
    gateway: Gateway, xray_daemon: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = gateway.login()
    monkeypatch.setenv(env_name("auth", "session_table"), "no-such-table")
    authorizer.reset()
    assert effect(pair.access_token) == "Deny"
    assert received(xray_daemon)["fault"] is True
