"""The authorizer on the event shapes of the API Gateway documentation ("Input to an API
Gateway Lambda authorizer" for REST TOKEN events, "WebSocket API Lambda REQUEST authorizer"
for ``$connect``), with tokens from the API's own ``TokenService``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any, get_args

import jwt
import pytest
from pydantic import SecretStr

from textnlp.adapters.secrets.aws import AwsSecretsManager
from textnlp.adapters.secrets.base import JWT_SECRET
from textnlp.auth.api_keys import generate_api_key
from textnlp.auth.tokens import TokenService
from textnlp.config import AuthSettings, SecretsSettings, Settings, env_name, load_settings
from textnlp.deployment import secret_path
from textnlp.errors import AuthError
from textnlp.lambdas import authorizer
from textnlp.lambdas.authorizer_settings import (
    ALGORITHMS,
    DEFAULTS,
    ENVIRONMENTS,
    SECRETS_BACKENDS,
    SESSION_STORES,
    SETTINGS_READ,
    AuthorizerConfigError,
    AuthorizerSettings,
    variable,
)

SECRET = "s" * 64  # long enough for HS512 too
REST_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/POST/api/v1/generate/batch"
REST_STAGE = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/*"
WS_ARN = "arn:aws:execute-api:us-east-1:123456789012:wsapi123/prod/$connect"
WS_STAGE = "arn:aws:execute-api:us-east-1:123456789012:wsapi123/prod/*"


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenService]:
    for path in SETTINGS_READ:
        monkeypatch.delenv(variable(*path), raising=False)
    monkeypatch.setenv("TEXTNLP_AUTH__JWT_SECRET", SECRET)
    authorizer.reset()
    yield TokenService(AuthSettings(jwt_secret=SecretStr(SECRET)))
    authorizer.reset()


def token_event(credential: str, scheme: str = "Bearer") -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": f"{scheme} {credential}", "methodArn": REST_ARN}


def connect_event(
    query: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": WS_ARN,
        "headers": {
            "Connection": "upgrade",
            "Host": "wsapi123.execute-api.us-east-1.amazonaws.com",
            "Sec-WebSocket-Version": "13",
            "Upgrade": "websocket",
            **(headers or {}),
        },
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "messageDirection": "IN",
            "stage": "prod",
            "connectionId": "d9R7FcmqIAMCJxw=",
            "apiId": "wsapi123",
        },
    }


def statement(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["policyDocument"]["Version"] == "2012-10-17"
    (only,) = answer["policyDocument"]["Statement"]
    assert only["Action"] == "execute-api:Invoke"
    return dict(only)


def test_an_access_token_is_allowed_on_the_whole_stage(tokens: TokenService) -> None:
    pair = tokens.issue_pair("user-42", "admin")
    answer = authorizer.handler(token_event(pair.access_token))
    assert statement(answer) == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": REST_STAGE,
    }
    assert answer["principalId"] == "user-42"
    assert answer["context"] == {"userId": "user-42", "role": "admin", "credential": "jwt"}
    # API Gateway reuses this answer for 5 minutes on any route: the policy must cover them.
    other_route = REST_STAGE[:-1] + "GET/api/v1/generate/status/job-1"
    assert fnmatchcase(other_route, statement(answer)["Resource"])


def test_the_bearer_scheme_is_case_insensitive(tokens: TokenService) -> None:
    pair = tokens.issue_pair("u", "user")
    assert statement(authorizer.handler(token_event(pair.access_token, "bearer")))["Effect"] == (
        "Allow"
    )


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param("access_token", None, id="access_token"),
        pytest.param("token", None, id="old-token-parameter"),
        pytest.param(None, "Authorization", id="authorization-header"),
    ],
)
def test_websocket_connect_event(
    tokens: TokenService, query: str | None, headers: str | None
) -> None:
    access = tokens.issue_pair("user-7", "user").access_token
    event = connect_event(
        {query: access} if query else None,
        {headers: f"Bearer {access}"} if headers else None,
    )
    answer = authorizer.handler(event)
    assert statement(answer)["Effect"] == "Allow" and statement(answer)["Resource"] == WS_STAGE
    assert answer["context"]["userId"] == "user-7"


def test_websocket_connect_without_a_credential_is_denied(tokens: TokenService) -> None:
    answer = authorizer.handler(connect_event(None))
    assert statement(answer) == {
        "Action": "execute-api:Invoke",
        "Effect": "Deny",
        "Resource": WS_STAGE,
    }


def test_api_keys_are_passed_through_to_the_app(tokens: TokenService) -> None:
    key = generate_api_key().plaintext
    for event in (token_event(key), connect_event(headers={"X-API-Key": key})):
        answer = authorizer.handler(event)
        assert statement(answer)["Effect"] == "Allow"
        assert answer["principalId"] == "api-key"
        assert answer["context"] == {"credential": "api_key"}
    malformed = authorizer.handler(token_event("tnlp_short_secret"))
    assert statement(malformed)["Effect"] == "Deny" and "context" not in malformed


def bad_tokens(tokens: TokenService) -> dict[str, str]:
    pair = tokens.issue_pair("u", "user")
    now = int(time.time())
    base = {"iss": "textnlp", "aud": "textnlp-api", "sub": "u", "jti": "j", "typ": "access"}
    return {
        "refresh": pair.refresh_token,
        "expired": jwt.encode({**base, "iat": now - 999, "exp": now - 100}, SECRET),
        "forged (other key)": jwt.encode({**base, "iat": now, "exp": now + 60}, "x" * 64),
        "wrong audience": jwt.encode({**base, "aud": "x", "iat": now, "exp": now + 60}, SECRET),
        "wrong issuer": jwt.encode({**base, "iss": "x", "iat": now, "exp": now + 60}, SECRET),
        "other algorithm": jwt.encode({**base, "iat": now, "exp": now + 60}, SECRET, "HS512"),
        "no jti": jwt.encode(
            {k: v for k, v in {**base, "iat": now, "exp": now + 60}.items() if k != "jti"}, SECRET
        ),
        "alg none": jwt.encode({**base, "iat": now, "exp": now + 60}, None, algorithm="none"),
        "tampered": pair.access_token[:-3] + "abc",
        "garbage": "not-a-jwt",
    }


def test_anything_invalid_is_denied_on_the_whole_stage(tokens: TokenService) -> None:
    for name, token in bad_tokens(tokens).items():
        answer = authorizer.handler(token_event(token))
        assert statement(answer)["Effect"] == "Deny", name
        assert statement(answer)["Resource"] == REST_STAGE, name
        assert answer["principalId"] == "anonymous" and "context" not in answer, name
        # The API's own check agrees: one rule set, not two copies.
        with pytest.raises(AuthError, match="token"):
            tokens.verify(token)


def test_malformed_events_are_denied(tokens: TokenService) -> None:
    access = tokens.issue_pair("u", "user").access_token
    events: list[dict[str, Any]] = [
        {"methodArn": REST_ARN},
        {"authorizationToken": f"Basic {access}", "methodArn": REST_ARN},
        {"authorizationToken": "Bearer ", "methodArn": REST_ARN},
        {"authorizationToken": f"Bearer {access}", "methodArn": "not-an-arn"},
        {"authorizationToken": f"Bearer {access}"},
        {},
    ]
    for event in events:
        answer = authorizer.handler(event)
        assert statement(answer)["Effect"] == "Deny", event
        assert statement(answer)["Resource"] in {REST_STAGE, "*"}, event


def test_stage_resource_of_rest_and_websocket_arns() -> None:
    assert authorizer.stage_resource(REST_ARN) == REST_STAGE
    assert authorizer.stage_resource(WS_ARN) == WS_STAGE
    china = "arn:aws-cn:execute-api:cn-north-1:123456789012:a1b2"
    assert authorizer.stage_resource(f"{china}/dev/GET/") == f"{china}/dev/*"
    for bad in ("*", "arn:aws:execute-api:us-east-1:123456789012:abc", None, 42):
        assert authorizer.stage_resource(bad) is None


def test_issuer_and_audience_come_from_the_settings_variables(
    tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_name("auth", "issuer"), "https://auth.example")
    monkeypatch.setenv(env_name("auth", "audience"), "partner-api")
    monkeypatch.setenv(env_name("auth", "jwt_algorithm"), "HS512")
    partner = TokenService(
        AuthSettings(
            jwt_secret=SecretStr(SECRET),
            issuer="https://auth.example",
            audience="partner-api",
            jwt_algorithm="HS512",
        )
    )
    authorizer.reset()
    allowed = authorizer.handler(token_event(partner.issue_pair("p", "user").access_token))
    assert statement(allowed)["Effect"] == "Allow"
    denied = authorizer.handler(token_event(tokens.issue_pair("u", "user").access_token))
    assert statement(denied)["Effect"] == "Deny"


def test_settings_are_read_once_per_container(
    tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = tokens.issue_pair("u", "user").access_token
    assert statement(authorizer.handler(token_event(access)))["Effect"] == "Allow"
    monkeypatch.setenv("TEXTNLP_AUTH__JWT_SECRET", "another-key-" * 4)
    assert statement(authorizer.handler(token_event(access)))["Effect"] == "Allow"


def test_without_a_key_everything_is_denied_until_one_is_set(
    tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = tokens.issue_pair("u", "user").access_token
    monkeypatch.delenv("TEXTNLP_AUTH__JWT_SECRET")
    assert statement(authorizer.handler(token_event(access)))["Effect"] == "Deny"
    monkeypatch.setenv("TEXTNLP_AUTH__JWT_SECRET", SECRET)  # a failure is not cached
    assert statement(authorizer.handler(token_event(access)))["Effect"] == "Allow"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("environment", "prod"),
        ("jwt_algorithm", "none"),
        ("backend", "vault"),
        ("session_store", "redis"),
    ],
)
def test_values_the_schema_refuses_are_refused(name: str, value: str) -> None:
    path = {"environment": ("environment",), "backend": ("secrets", "backend")}.get(
        name, ("auth", name)
    )
    environ = {variable(*path): value, "TEXTNLP_AUTH__JWT_SECRET": SECRET}
    with pytest.raises(AuthorizerConfigError, match=variable(*path)):
        AuthorizerSettings.from_environ(environ)


class SecretsManagerStub:
    """``get_secret_value`` answering the shape of the Secrets Manager API reference."""

    def __init__(self, secret_string: str | None, error: Exception | None = None) -> None:
        self.secret_string = secret_string
        self.error = error
        self.calls: list[str] = []

    def get_secret_value(self, *, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls.append(SecretId)
        if self.error is not None:
            raise self.error
        return {
            "ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SecretId}-a1B2c3",
            "Name": SecretId,
            "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1",
            "SecretString": self.secret_string,
            "VersionStages": ["AWSCURRENT"],
        }


@pytest.mark.parametrize(
    "stored",
    [SECRET, json.dumps({"value": SECRET}), json.dumps({"jwt_secret": SECRET})],
    ids=["plain", "value-key", "single-key"],
)
def test_the_key_is_read_from_the_apis_secret(stored: str) -> None:
    stub = SecretsManagerStub(stored)
    environ = {"TEXTNLP_SECRETS__BACKEND": "aws", "TEXTNLP_ENVIRONMENT": "production"}
    settings = AuthorizerSettings.from_environ(environ, secrets_client=stub)
    assert settings.key == SECRET and SECRET not in repr(settings)
    assert stub.calls == ["/textnlp/production/api/jwt-secret"]


def test_an_unreadable_or_empty_secret_is_a_configuration_error() -> None:
    environ = {"TEXTNLP_SECRETS__BACKEND": "aws"}
    for stub in (SecretsManagerStub(None, RuntimeError("AccessDenied")), SecretsManagerStub("")):
        with pytest.raises(AuthorizerConfigError, match="/textnlp/dev/api/jwt-secret"):
            AuthorizerSettings.from_environ(environ, secrets_client=stub)


def test_the_names_and_defaults_are_the_settings_schemas() -> None:
    for path in SETTINGS_READ:
        assert variable(*path) == env_name(*path)
    defaults = Settings.model_construct()
    for path, default in DEFAULTS.items():
        value: Any = defaults
        for part in path:
            value = getattr(value, part)
        assert value == default, path
    assert get_args(Settings.model_fields["environment"].annotation) == ENVIRONMENTS
    assert get_args(SecretsSettings.model_fields["backend"].annotation) == SECRETS_BACKENDS
    assert get_args(AuthSettings.model_fields["jwt_algorithm"].annotation) == ALGORITHMS
    assert get_args(AuthSettings.model_fields["session_store"].annotation) == SESSION_STORES
    # The Lambda reads the key where the API does (one definition: textnlp.deployment).
    assert secret_path("staging", JWT_SECRET) == AwsSecretsManager("staging").path(JWT_SECRET)


def test_the_session_table_is_read_only_with_the_dynamodb_store() -> None:
    base = {"TEXTNLP_AUTH__JWT_SECRET": SECRET}
    assert AuthorizerSettings.from_environ(base).session_table == ""
    named = AuthorizerSettings.from_environ(
        {**base, "TEXTNLP_AUTH__SESSION_STORE": "dynamodb", "TEXTNLP_AUTH__SESSION_TABLE": "t1"}
    )
    assert named.session_table == "t1"
    # The schema's default for the environment, as the API's settings resolve it.
    default = AuthorizerSettings.from_environ(
        {**base, "TEXTNLP_AUTH__SESSION_STORE": "dynamodb", "TEXTNLP_ENVIRONMENT": "staging"}
    )
    schema = load_settings(
        environ={"TEXTNLP_ENVIRONMENT": "staging", "TEXTNLP_AUTH__SESSION_STORE": "dynamodb"}
    )
    assert default.session_table == schema.auth.session_table == "textnlp-staging-sessions"
