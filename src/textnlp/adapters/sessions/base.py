"""The session store: refresh-token families and revoked access tokens, the durable half of
JWT auth (``textnlp.auth.service`` holds the rules, this only the state).

A login starts a *family*; each refresh rotates it to a new refresh token and the old one dies.
Presenting a dead refresh token again means it leaked: the whole family is revoked, and with it
every access token of the family; only the token the family has just rotated from, presented
again within ``auth.refresh_reuse_grace_s``, is refused alone (two refreshes racing). Logout
revokes the family and the access token's ``jti``.

Two implementations: the database's tables (``DatabaseSessionStore``, the local profile) and
a DynamoDB table (``DynamoDbSessionStore``, the ``aws`` profile), which the Lambda authorizer
reads too, so that API Gateway refuses a logged-out or revoked token. Never the cache: the
design's Redis evicts (allkeys-lru). Where the store cannot be reached, its methods raise
``textnlp.errors.ServiceUnavailable``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from textnlp.adapters.db.users import User


class SessionStore(Protocol):
    def start_family(self, family: str, user_id: str, refresh_jti: str, expires_at: float) -> None:
        """A new login of ``user_id`` whose next usable refresh token is ``refresh_jti``."""
        ...

    def rotate(self, family: str, used_jti: str, new_jti: str, expires_at: float) -> bool:
        """Move the family from ``used_jti`` to ``new_jti``; False when ``used_jti`` is not
        its current token or the family is revoked. Atomic: of two concurrent rotations with
        the same token, one wins. Records ``used_jti`` and the time for ``rotated_from``."""
        ...

    def rotated_from(self, family: str, jti: str, since: float) -> bool:
        """Whether the family is live and its last rotation replaced ``jti`` at ``since``
        (epoch seconds) or later: ``jti`` lost a race with that rotation."""
        ...

    def revoke_family(self, family: str) -> None:
        """Kill the family (a no-op for an unknown one)."""
        ...

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        """Kill one access token until it would have expired anyway."""
        ...

    def access_holder(self, user_id: str, family: str, jti: str) -> User | None:
        """The user of a live access token (family live and the user's, jti not revoked), or
        None. Runs on every authenticated request."""
        ...

    def session_holder(self, user_id: str, family: str, refresh_jti: str) -> User | None:
        """The user of a live family whose current refresh token is ``refresh_jti`` (a console
        session), or None: a token the family has rotated past is not a session."""
        ...

    def purge_expired(self, now: float | None = None) -> None:
        """Forget what has expired (a no-op where the store expires items itself)."""
        ...
