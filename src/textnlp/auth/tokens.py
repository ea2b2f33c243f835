"""JWT access and refresh tokens (PyJWT), pure: no database, usable from the Lambda authorizer.

Every token carries ``iss``, ``aud``, ``sub`` (user id), ``role``, ``jti`` (unique id),
``family`` (the login it descends from), ``typ`` ("access" or "refresh"), ``iat``, ``exp``
and ``session_epoch`` (the user's when it was issued; absent in tokens from before it: 0).
Verification is ``textnlp.auth.jwt_rules`` (shared with the Lambda authorizer): pinned
algorithm, every claim required, issuer, audience and expiry checked, and a token of the other
type refused — a refresh token is never an access token. Revocation (logout, family reuse)
needs the database and is checked by ``textnlp.auth.service``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from textnlp.auth.jwt_rules import TokenRejected, TokenType, decode_token
from textnlp.config import AuthSettings
from textnlp.errors import AuthError


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    role: str
    jti: str
    family: str
    type: TokenType
    exp: int
    iat: int
    #: The user's session epoch when the token was issued (``AuthService.end_sessions``).
    session_epoch: int = 0


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_claims: TokenClaims
    refresh_claims: TokenClaims
    expires_in: int
    token_type: str = "bearer"


def new_id() -> str:
    return secrets.token_urlsafe(16)


class TokenService:
    """Issues and verifies the API's tokens with the key and algorithm of ``AuthSettings``."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._key = settings.jwt_secret.get_secret_value()
        self._algorithm = settings.jwt_algorithm

    @property
    def refresh_reuse_grace_s(self) -> float:
        """``AuthSettings.refresh_reuse_grace_s``: the refresh rules' (``AuthService``)."""
        return self._settings.refresh_reuse_grace_s

    def issue_pair(
        self, user_id: str, role: str, *, family: str | None = None, session_epoch: int = 0
    ) -> TokenPair:
        """A fresh access + refresh pair; ``family`` continues a login (rotation)."""
        family = family or new_id()
        now = int(time.time())
        access = self._claims(user_id, role, family, "access", now, session_epoch)
        refresh = self._claims(user_id, role, family, "refresh", now, session_epoch)
        return TokenPair(
            access_token=self._encode(access),
            refresh_token=self._encode(refresh),
            access_claims=access,
            refresh_claims=refresh,
            expires_in=self._settings.access_ttl_s,
        )

    def verify(self, token: str, *, expected_type: TokenType = "access") -> TokenClaims:
        """The claims of a valid token of ``expected_type``; ``AuthError`` otherwise."""
        try:
            payload = decode_token(
                token,
                key=self._key,
                algorithm=self._algorithm,
                issuer=self._settings.issuer,
                audience=self._settings.audience,
                expected_type=expected_type,
            )
        except TokenRejected as exc:
            raise AuthError(str(exc)) from None
        try:
            return TokenClaims(
                sub=str(payload["sub"]),
                role=str(payload.get("role", "user")),
                jti=str(payload["jti"]),
                family=str(payload.get("family", "")),
                type=expected_type,
                exp=int(payload["exp"]),
                iat=int(payload["iat"]),
                session_epoch=int(payload.get("session_epoch", 0)),
            )
        except (TypeError, ValueError):
            raise AuthError("invalid token claims") from None

    def _claims(
        self, sub: str, role: str, family: str, kind: TokenType, now: int, session_epoch: int
    ) -> TokenClaims:
        settings = self._settings
        ttl = settings.access_ttl_s if kind == "access" else settings.refresh_ttl_s
        return TokenClaims(
            sub=sub,
            role=role,
            jti=new_id(),
            family=family,
            type=kind,
            exp=now + ttl,
            iat=now,
            session_epoch=session_epoch,
        )

    def _encode(self, claims: TokenClaims) -> str:
        payload = {
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "sub": claims.sub,
            "role": claims.role,
            "jti": claims.jti,
            "family": claims.family,
            "typ": claims.type,
            "iat": claims.iat,
            "exp": claims.exp,
            "session_epoch": claims.session_epoch,
        }
        return jwt.encode(payload, self._key, algorithm=self._algorithm, headers={"typ": "JWT"})
