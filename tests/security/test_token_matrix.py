"""Forged and misused tokens against a real app: every one answers 401, none reaches a route.

The tokens are correctly formed JWTs (PyJWT), signed with the app's own key unless the case
is about the key: an attacker in the local profile knows it (it is in the source).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.security.conftest import Api

ME = "/api/v1/auth/api-keys"  # any authenticated read


def claims_of(api: Api, username: str = "alice") -> dict[str, Any]:
    token = api.session(username)["access_token"]
    return jwt.decode(token, options={"verify_signature": False})


def secret(api: Api) -> str:
    return api.settings.auth.jwt_secret.get_secret_value()


def signed(api: Api, claims: dict[str, Any], algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret(api), algorithm=algorithm)


def without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


Forgery = Callable[[Api, dict[str, Any]], str]


def _missing(name: str) -> Forgery:
    return lambda api, claims: signed(api, without(claims, name))


FORGERIES: dict[str, Forgery] = {
    "forged signature": lambda api, c: jwt.encode(
        c, "another-key-of-enough-length-0123456789abcdef", algorithm="HS256"
    ),
    "alg none": lambda api, c: jwt.encode({**c, "role": "admin"}, None, algorithm="none"),
    "HS384 with the key": lambda api, c: signed(api, c, "HS384"),
    "HS512 with the key": lambda api, c: signed(api, c, "HS512"),
    "payload changed after signing": lambda api, c: _swap_payload(
        signed(api, c), signed(api, {**c, "sub": "someone-else", "role": "admin"})
    ),
    "expired": lambda api, c: signed(api, {**c, "iat": c["iat"] - 7200, "exp": c["iat"] - 3600}),
    "issued in the future": lambda api, c: signed(
        api, {**c, "iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}
    ),
    "wrong issuer": lambda api, c: signed(api, {**c, "iss": "someone-else"}),
    "wrong audience": lambda api, c: signed(api, {**c, "aud": "another-api"}),
    "refresh type": lambda api, c: signed(api, {**c, "typ": "refresh"}),
    "unknown type": lambda api, c: signed(api, {**c, "typ": "id"}),
    "exp as a string": lambda api, c: signed(api, {**c, "exp": str(c["exp"])}),
    "exp of 10**20": lambda api, c: signed(api, {**c, "exp": 10**20}),
    **{f"no {name}": _missing(name) for name in ("exp", "iat", "iss", "aud", "sub", "jti", "typ")},
    "unknown user": lambda api, c: signed(api, {**c, "sub": "no-such-user-id"}),
    "not a JWT": lambda api, c: "not-a-token",
    "empty segments": lambda api, c: "..",
}


def _swap_payload(token: str, other: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{other.split('.')[1]}.{signature}"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_forged_or_misused_access_tokens_are_refused(api: Api, case: str) -> None:
    token = FORGERIES[case](api, claims_of(api))
    response = api.client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (case, response.text)
    assert response.json()["error"]["type"] == "authentication_error"


def test_refresh_token_is_not_an_access_token(api: Api) -> None:
    refresh = api.session("alice")["refresh_token"]
    response = api.client.get(ME, headers={"Authorization": f"Bearer {refresh}"})
    assert response.status_code == 401


def test_access_token_is_not_a_refresh_token(api: Api) -> None:
    access = api.session("alice")["access_token"]
    response = api.client.post("/api/v1/auth/refresh", json={"refresh_token": access})
    assert response.status_code == 401


def test_a_genuine_token_passes(api: Api) -> None:
    # The control: the matrix above fails for the reason it names, not for every token.
    claims = claims_of(api)
    response = api.client.get(ME, headers={"Authorization": f"Bearer {signed(api, claims)}"})
    assert response.status_code == 200, response.text
