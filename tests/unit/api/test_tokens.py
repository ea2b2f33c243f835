"""The JWT negative matrix on TokenService alone (no database, as the Lambda authorizer uses it)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from textnlp.auth.tokens import TokenService
from textnlp.config import AuthSettings
from textnlp.errors import AuthError

SECRET = "unit-test-secret-that-is-long-enough-for-hs512-0123456789abcdef0123"


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(AuthSettings(jwt_secret=SecretStr(SECRET), access_ttl_s=60))


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_pair_round_trips(tokens: TokenService) -> None:
    pair = tokens.issue_pair("user-1", "admin")
    access = tokens.verify(pair.access_token)
    refresh = tokens.verify(pair.refresh_token, expected_type="refresh")
    assert (access.sub, access.role, access.type) == ("user-1", "admin", "access")
    assert refresh.type == "refresh" and refresh.family == access.family
    assert access.jti != refresh.jti
    assert access.exp - access.iat == 60
    assert jwt.get_unverified_header(pair.access_token)["alg"] == "HS256"


def test_rotation_keeps_the_family(tokens: TokenService) -> None:
    first = tokens.issue_pair("u", "user")
    second = tokens.issue_pair("u", "user", family=first.refresh_claims.family)
    assert second.refresh_claims.family == first.refresh_claims.family
    assert second.refresh_claims.jti != first.refresh_claims.jti


def _forge(claims: dict[str, Any], key: str | None = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: _forge(c, None, "none"), id="alg-none"),
        pytest.param(lambda c: _forge(c, "wrong-key-wrong-key-wrong-key-32b"), id="wrong-key"),
        pytest.param(lambda c: _forge(c, SECRET, "HS512"), id="other-alg"),
        pytest.param(lambda c: _forge({**c, "exp": int(time.time()) - 30}), id="expired"),
        pytest.param(lambda c: _forge({**c, "aud": "other"}), id="wrong-aud"),
        pytest.param(lambda c: _forge({**c, "iss": "other"}), id="wrong-iss"),
        pytest.param(lambda c: _forge({k: v for k, v in c.items() if k != "exp"}), id="no-exp"),
        pytest.param(lambda c: _forge({k: v for k, v in c.items() if k != "jti"}), id="no-jti"),
        pytest.param(lambda c: _forge({**c, "typ": "refresh"}), id="refresh-as-access"),
        pytest.param(lambda c: _forge({**c, "iat": "yesterday"}), id="bad-iat"),
        pytest.param(lambda c: _forge(c)[:-3] + "abc", id="tampered-signature"),
        pytest.param(lambda c: "garbage", id="garbage"),
    ],
)
def test_invalid_access_tokens_are_refused(tokens: TokenService, mutate: Any) -> None:
    claims = claims_of(tokens.issue_pair("u", "user").access_token)
    with pytest.raises(AuthError):
        tokens.verify(mutate(claims))


def test_refresh_token_is_not_an_access_token(tokens: TokenService) -> None:
    pair = tokens.issue_pair("u", "user")
    with pytest.raises(AuthError, match="access"):
        tokens.verify(pair.refresh_token)
    with pytest.raises(AuthError, match="refresh"):
        tokens.verify(pair.access_token, expected_type="refresh")


def test_a_token_of_another_deployment_is_refused(tokens: TokenService) -> None:
    other = TokenService(AuthSettings(jwt_secret=SecretStr("x" * 64), audience="other-api"))
    with pytest.raises(AuthError):
        tokens.verify(other.issue_pair("u", "user").access_token)


def _times(exp: Any, iat: Any = None, **more: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "textnlp",
        "aud": "textnlp-api",
        "sub": "u",
        "role": "admin",
        "jti": "j",
        "family": "f",
        "typ": "access",
        "iat": now if iat is None else iat,
        "exp": exp,
    }
    return {**claims, **more}


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(_times(exp=str(int(time.time()) + 600)), id="exp-as-string"),
        pytest.param(_times(exp=10**20), id="exp-10e20"),
        pytest.param(_times(exp=int(time.time()) + 600.5), id="exp-as-float"),
        pytest.param(_times(exp=int(time.time()) + 2 * 366 * 24 * 3600), id="lifetime-two-years"),
        pytest.param(_times(exp=2**62, iat=2**62 - 60), id="issued-in-the-far-future"),
        pytest.param(
            _times(exp=int(time.time()) + 600, iat=str(int(time.time()))), id="iat-string"
        ),
        pytest.param(_times(exp=int(time.time()) + 600, iat=True), id="iat-bool"),
        pytest.param(_times(exp=int(time.time()) + 600, nbf="0"), id="nbf-string"),
    ],
)
def test_signed_tokens_with_bad_times_are_refused(tokens: TokenService, claims: Any) -> None:
    """Correctly signed (the local profile's key is public), yet out of any sane bounds."""
    with pytest.raises(AuthError):
        tokens.verify(_forge(claims))


def test_a_signed_token_with_sane_times_passes(tokens: TokenService) -> None:
    now = int(time.time())
    assert tokens.verify(_forge(_times(exp=now + 600, iat=now - 10, nbf=now - 10))).exp == now + 600
