"""The session store in the database's tables (``token_families``, ``revoked_tokens``): the
local profile's, and any deployment that keeps ``auth.session_store = database``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textnlp.adapters.db.tokens import TokenRepository

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from textnlp.adapters.db.users import User


class DatabaseSessionStore:
    """Each call is one transaction of its own."""

    def __init__(self, sessions: sessionmaker[Any]) -> None:
        self.sessions = sessions

    def start_family(self, family: str, user_id: str, refresh_jti: str, expires_at: float) -> None:
        with self.sessions.begin() as session:
            TokenRepository(session).start_family(family, user_id, refresh_jti, expires_at)

    def rotate(self, family: str, used_jti: str, new_jti: str, expires_at: float) -> bool:
        with self.sessions.begin() as session:
            return TokenRepository(session).rotate(family, used_jti, new_jti, expires_at)

    def rotated_from(self, family: str, jti: str, since: float) -> bool:
        with self.sessions() as session:
            return TokenRepository(session).rotated_from(family, jti, since)

    def revoke_family(self, family: str) -> None:
        with self.sessions.begin() as session:
            TokenRepository(session).revoke_family(family)

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        with self.sessions.begin() as session:
            TokenRepository(session).revoke_jti(jti, expires_at)

    def access_holder(self, user_id: str, family: str, jti: str) -> User | None:
        # One query joins the user with the family and the revocations (the fast path).
        with self.sessions() as session:
            return TokenRepository(session).access_holder(user_id, family, jti)

    def session_holder(self, user_id: str, family: str, refresh_jti: str) -> User | None:
        with self.sessions() as session:
            return TokenRepository(session).session_holder(user_id, family, refresh_jti)

    def purge_expired(self, now: float | None = None) -> None:
        with self.sessions.begin() as session:
            TokenRepository(session).purge_expired(now)
