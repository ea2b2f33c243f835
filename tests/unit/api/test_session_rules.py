"""The session table's liveness rule (shared by the API's DynamoDB store and the authorizer)
and the authorizer's X-Ray subsegments, on the documents' shapes: pure, no network."""

from __future__ import annotations

import pytest

from textnlp.auth.session_items import access_is_live, family_key, jti_key
from textnlp.lambdas.xray import daemon_address, subsegment_document, trace_context

NOW = 1_700_000_000.0


def family(user: str = "u1", *, revoked: bool = False, expires: float = NOW + 60) -> dict:
    return {
        **family_key("f1"),
        "user_id": {"S": user},
        "current_jti": {"S": "r1"},
        "revoked": {"BOOL": revoked},
        "expires_at": {"N": str(int(expires))},
    }


def revoked_token() -> dict:
    return {**jti_key("a1"), "revoked": {"BOOL": True}, "expires_at": {"N": str(int(NOW + 60))}}


def test_a_live_family_of_the_user_holds_the_token() -> None:
    assert access_is_live(family(), None, "u1", NOW)


@pytest.mark.parametrize(
    ("family_item", "jti_item", "user"),
    [
        pytest.param(None, None, "u1", id="no-family"),
        pytest.param(family(revoked=True), None, "u1", id="revoked-family"),
        pytest.param(family(expires=NOW - 1), None, "u1", id="expired-family"),
        pytest.param(family("u2"), None, "u1", id="another-users-family"),
        pytest.param(family(), revoked_token(), "u1", id="revoked-token"),
    ],
)
def test_what_is_not_live(family_item: dict | None, jti_item: dict | None, user: str) -> None:
    assert not access_is_live(family_item, jti_item, user, NOW)


def test_keys_name_their_kind() -> None:
    assert family_key("x") == {"pk": {"S": "family#x"}}
    assert jti_key("x") == {"pk": {"S": "jti#x"}}


def test_trace_header_and_daemon_address() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert trace_context(header) == ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8")
    assert trace_context(header.replace("Sampled=1", "Sampled=0")) is None
    assert trace_context("") is None
    assert daemon_address("169.254.79.129:2000") == ("169.254.79.129", 2000)
    assert daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001") == ("127.0.0.2", 2001)
    assert daemon_address("") is None and daemon_address("nonsense") is None


def test_subsegment_document() -> None:
    document = subsegment_document(
        "DynamoDB", ("1-a-b", "p1"), 1.0, 2.0, {"operation": "BatchGetItem"}, fault=True
    )
    assert document["type"] == "subsegment" and document["namespace"] == "aws"
    assert document["parent_id"] == "p1" and document["trace_id"] == "1-a-b"
    assert len(document["id"]) == 16 and document["fault"] is True
