"""The one check of the API's JWTs, shared by ``TokenService`` and the Lambda authorizer.

PyJWT and the standard library only: the authorizer's asset carries no pydantic, so this module
must not import ``textnlp.config`` (the callers pass the key and claims they expect). The rules:
the algorithm is pinned (``alg: none`` and every other algorithm are refused), every claim of
``REQUIRED_CLAIMS`` must be present, issuer and audience must match, expiry and issue time are
checked with ``LEEWAY_S`` of clock skew, and ``typ`` must be the expected one, so a refresh
token is never an access token. Any failure raises ``TokenRejected``.

The time claims are checked beyond PyJWT, which takes ``"exp": "99999999999"`` (a string it
converts) and ``"exp": 10**20``: ``exp``, ``iat`` (and ``nbf`` when present) must be JSON
integers, ``iat`` not in the future, and the token may live at most ``MAX_LIFETIME_S`` (longer
than any TTL the settings should give a refresh token), so a token signed with a leaked or
public key (the local profile's is in the source) cannot be made to live forever.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import jwt

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti", "typ")
#: Clock skew tolerated between hosts, in seconds.
LEEWAY_S = 5
#: Longest lifetime (exp - iat) of a token accepted: a year and a day.
MAX_LIFETIME_S = 366 * 24 * 3600


class TokenRejected(Exception):  # noqa: N818 - a verdict, mapped to AuthError by TokenService
    """The token is not a valid token of the expected type; the message says why."""


def decode_token(
    token: str,
    *,
    key: str,
    algorithm: str,
    issuer: str,
    audience: str,
    expected_type: TokenType,
) -> dict[str, Any]:
    """The verified claims of ``token``; ``TokenRejected`` when any rule fails."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_S,
            options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("token expired") from None
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"invalid token: {exc}") from None
    _check_times(claims)
    if claims.get("typ") != expected_type:
        raise TokenRejected(
            f"expected {'an' if expected_type == 'access' else 'a'} {expected_type} token"
        )
    return claims


def _check_times(claims: dict[str, Any], now: float | None = None) -> None:
    """Integer time claims within bounds (PyJWT has checked expiry itself)."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        # bool is an int in Python, not in JSON's sense of a NumericDate.
        if name in claims and (not isinstance(value, int) or isinstance(value, bool)):
            raise TokenRejected(f"invalid token: {name} must be an integer")
    current = time.time() if now is None else now
    exp, iat = int(claims["exp"]), int(claims["iat"])
    if iat > current + LEEWAY_S:
        raise TokenRejected("invalid token: issued in the future")
    if not iat < exp <= iat + MAX_LIFETIME_S:
        raise TokenRejected("invalid token: lifetime out of bounds")
