"""The API with the ``aws`` profile's session store: families and revocations in DynamoDB
(moto's server), users in the database. Login, refresh, reuse and logout through HTTP, and the
state where it is meant to be: in the table, not in the database's session tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.support.api import Api, make_settings, start_api, without_reuse_grace
from tests.support.sessions import create_session_table, dynamodb, items
from textnlp.adapters.db.tokens import TokenFamilyRow

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
MODELS = "/api/v1/models/list"


@dataclass
class DynamoApi:
    api: Api
    dynamodb: Any
    table: str

    def stored(self) -> dict[str, dict[str, Any]]:
        return {item["pk"]["S"]: item for item in items(self.dynamodb, self.table)}


@pytest.fixture
def dynamo_api(aws_env: str, tmp_path: Path) -> Iterator[DynamoApi]:
    client = dynamodb(aws_env)
    table = create_session_table(client)
    settings = make_settings(
        tmp_path / "home",
        auth={"session_store": "dynamodb", "session_table": table},
        aws={"region": "us-east-1", "endpoint_url": aws_env},
    )
    for api in start_api(settings):
        yield DynamoApi(api, client, table)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sessions_live_in_dynamodb_not_in_the_database(dynamo_api: DynamoApi) -> None:
    api = dynamo_api.api
    tokens = api.login("alice")
    assert api.client.get(MODELS, headers=bearer(tokens["access_token"])).status_code == 200
    families = [key for key in dynamo_api.stored() if key.startswith("family#")]
    assert len(families) == 1
    platform = api.client.app.state.platform  # type: ignore[attr-defined]
    with platform.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TokenFamilyRow)) == 0


def test_refresh_reuse_revokes_the_family_in_the_table(
    dynamo_api: DynamoApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dynamo_api.api.client
    first = dynamo_api.api.login("alice")
    second = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    pair = second.json()
    assert client.get(MODELS, headers=bearer(pair["access_token"])).status_code == 200
    # At once (a refresh that lost a race): refused alone, the family lives.
    assert client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).status_code == 401
    assert client.get(MODELS, headers=bearer(pair["access_token"])).status_code == 200
    # Past the grace: the family dies, with every access token it issued.
    without_reuse_grace(dynamo_api.api, monkeypatch)
    assert client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).status_code == 401
    assert client.get(MODELS, headers=bearer(pair["access_token"])).status_code == 401
    assert client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).status_code == 401
    (family,) = [item for key, item in dynamo_api.stored().items() if key.startswith("family#")]
    assert family["revoked"] == {"BOOL": True}


def test_logout_refuses_the_access_and_refresh_tokens(dynamo_api: DynamoApi) -> None:
    client = dynamo_api.api.client
    tokens = dynamo_api.api.login("bob")
    assert client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 200
    assert client.get(MODELS, headers=bearer(tokens["access_token"])).status_code == 401
    assert client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    stored = dynamo_api.stored()
    assert [key for key in stored if key.startswith("jti#")]  # the access token, by its id
    # A new login of the same user is a new session, untouched by the logout.
    again = dynamo_api.api.login("bob")
    assert client.get(MODELS, headers=bearer(again["access_token"])).status_code == 200
