"""The API's access-token checks with PyJWT alone, for a Lambda without the app's packages.

Kept identical to ``textnlp.auth.tokens.TokenService.verify``: pinned algorithm, every claim
required, issuer, audience, expiry with 5 s of leeway, and ``typ`` must be ``access``. A test
checks both give the same answers on the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti", "typ"]
LEEWAY_S = 5


class InvalidToken(Exception):  # noqa: N818 - mirrors AuthError where textnlp.errors is absent
    pass


@dataclass(frozen=True)
class AuthConfig:
    secret: str
    algorithm: str = "HS256"
    issuer: str = "textnlp"
    audience: str = "textnlp-api"


@dataclass(frozen=True)
class Subject:
    sub: str
    role: str


def verify_access_token(token: str, config: AuthConfig) -> Subject:
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            config.secret,
            algorithms=[config.algorithm],
            audience=config.audience,
            issuer=config.issuer,
            leeway=LEEWAY_S,
            options={"require": REQUIRED, "verify_signature": True},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if payload.get("typ") != "access":
        raise InvalidToken("expected an access token")
    return Subject(sub=str(payload["sub"]), role=str(payload.get("role", "user")))
