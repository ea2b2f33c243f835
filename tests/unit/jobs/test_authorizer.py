"""The authorizer on the event shapes of the API Gateway documentation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from textnlp.auth.tokens import TokenService
from textnlp.config import AuthSettings
from textnlp.errors import AuthError
from textnlp.lambdas import authorizer
from textnlp.lambdas.jwt_check import AuthConfig, InvalidToken, verify_access_token

SECRET = "s" * 40
ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/POST/api/v1/generate/batch"
WS_ARN = "arn:aws:execute-api:us-east-1:123456789012:wsapi123/prod/$connect"


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenService]:
    monkeypatch.setenv("TEXTNLP_AUTH__JWT_SECRET", SECRET)
    authorizer.reset()
    yield TokenService(AuthSettings(jwt_secret=SecretStr(SECRET)))
    authorizer.reset()


def token_event(token: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": ARN}


def connect_event(token: str | None) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": WS_ARN,
        "headers": {"Host": "wsapi123.execute-api.us-east-1.amazonaws.com"},
        "queryStringParameters": {"token": token} if token is not None else None,
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "stage": "prod"},
    }


def effect(answer: dict[str, Any]) -> str:
    return str(answer["policyDocument"]["Statement"][0]["Effect"])


def test_rest_token_event_allows_a_valid_access_token(tokens: TokenService) -> None:
    pair = tokens.issue_pair("user-42", "user")
    answer = authorizer.handler(token_event(pair.access_token))
    assert effect(answer) == "Allow" and answer["principalId"] == "user-42"
    assert answer["context"] == {"userId": "user-42"}
    assert answer["policyDocument"]["Statement"][0]["Resource"] == ARN


def test_websocket_connect_event(tokens: TokenService) -> None:
    pair = tokens.issue_pair("user-7", "admin")
    answer = authorizer.handler(connect_event(pair.access_token))
    assert effect(answer) == "Allow" and answer["context"]["userId"] == "user-7"
    assert answer["policyDocument"]["Statement"][0]["Resource"] == WS_ARN
    assert effect(authorizer.handler(connect_event(None))) == "Deny"


def bad_tokens(tokens: TokenService) -> dict[str, str]:
    pair = tokens.issue_pair("u", "user")
    now = int(time.time())
    base = {"iss": "textnlp", "aud": "textnlp-api", "sub": "u", "jti": "j", "typ": "access"}
    return {
        "refresh": pair.refresh_token,
        "expired": jwt.encode({**base, "iat": now - 999, "exp": now - 100}, SECRET),
        "other key": jwt.encode({**base, "iat": now, "exp": now + 60}, "x" * 40),
        "wrong audience": jwt.encode({**base, "aud": "x", "iat": now, "exp": now + 60}, SECRET),
        "no jti": jwt.encode(
            {k: v for k, v in {**base, "iat": now, "exp": now + 60}.items() if k != "jti"}, SECRET
        ),
        "alg none": jwt.encode({**base, "iat": now, "exp": now + 60}, None, algorithm="none"),
        "tampered": pair.access_token[:-3] + "abc",
        "garbage": "not-a-jwt",
    }


def test_anything_invalid_is_denied(tokens: TokenService) -> None:
    for name, token in bad_tokens(tokens).items():
        answer = authorizer.handler(token_event(token))
        assert effect(answer) == "Deny", name
        assert "context" not in answer
    for event in ({"methodArn": ARN}, {"authorizationToken": "Basic abc", "methodArn": ARN}, {}):
        assert effect(authorizer.handler(event)) == "Deny"


def test_fallback_checks_agree_with_the_api(tokens: TokenService) -> None:
    config = AuthConfig(secret=SECRET)
    good = tokens.issue_pair("u", "user").access_token
    assert verify_access_token(good, config).sub == tokens.verify(good).sub == "u"
    for name, token in bad_tokens(tokens).items():
        with pytest.raises(InvalidToken):
            verify_access_token(token, config)
        with pytest.raises(AuthError):
            tokens.verify(token)
        assert name
