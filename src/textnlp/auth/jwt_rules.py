"""The one check of the API's JWTs, shared by ``TokenService`` and the Lambda authorizer.

PyJWT and the standard library only: the authorizer's asset carries no pydantic, so this module
must not import ``textnlp.config`` (the callers pass the key and claims they expect). The rules:
the algorithm is pinned (``alg: none`` and every other algorithm are refused), every claim of
``REQUIRED_CLAIMS`` must be present, issuer and audience must match, expiry and issue time are
checked with ``LEEWAY_S`` of clock skew, and ``typ`` must be the expected one, so a refresh
token is never an access token. Any failure raises ``TokenRejected``.
"""

from __future__ import annotations

from typing import Any, Literal

import jwt

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti", "typ")
#: Clock skew tolerated between hosts, in seconds.
LEEWAY_S = 5


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
    if claims.get("typ") != expected_type:
        raise TokenRejected(f"expected an {expected_type} token")
    return claims
