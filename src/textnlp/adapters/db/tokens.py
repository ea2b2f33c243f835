"""Refresh-token families and revoked tokens: the durable half of JWT auth.

A login starts a *family*; each refresh rotates to a new refresh token of the same family and
records the old one as used. Presenting a used refresh token again means it leaked: the whole
family is revoked (and with it every access token of the family), unless it is the token the
family has just rotated from (``rotated_from``: the loser of two concurrent refreshes).
Logout revokes the family and the access token's ``jti``. This lives in the database, never
only in the cache, because the design's Redis evicts (allkeys-lru). It is the local profile's
session store (``textnlp.adapters.sessions.database``); the ``aws`` profile keeps the same
state in DynamoDB.
"""

from __future__ import annotations

import time

from sqlalchemy import Boolean, Float, ForeignKey, String, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from textnlp.adapters.db.base import Base
from textnlp.adapters.db.users import User, UserRow, to_user


class TokenFamilyRow(Base):
    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: The jti of the one refresh token of this family that may be used next.
    current_jti: Mapped[str] = mapped_column(String(32))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[float] = mapped_column(Float)
    #: The refresh token the last rotation replaced, and when (epoch seconds); None before one.
    previous_jti: Mapped[str | None] = mapped_column(String(32), default=None)
    rotated_at: Mapped[float | None] = mapped_column(Float, default=None)


class RevokedTokenRow(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


#: Every authenticated request runs this: built once (building a statement costs ~4x running
#: it on SQLite), with bound parameters.
_ACCESS_HOLDER = (
    select(UserRow, RevokedTokenRow.jti)
    .join(TokenFamilyRow, TokenFamilyRow.user_id == UserRow.id)
    .outerjoin(RevokedTokenRow, RevokedTokenRow.jti == bindparam("jti"))
    .where(
        UserRow.id == bindparam("user_id"),
        TokenFamilyRow.id == bindparam("family"),
        TokenFamilyRow.revoked.is_(False),
        # An expired family is dead before the purge removes it (as in the DynamoDB store).
        TokenFamilyRow.expires_at > bindparam("now"),
    )
)

#: The user of a live family whose current refresh token is ``jti``.
_SESSION_HOLDER = (
    select(UserRow)
    .join(TokenFamilyRow, TokenFamilyRow.user_id == UserRow.id)
    .where(
        UserRow.id == bindparam("user_id"),
        TokenFamilyRow.id == bindparam("family"),
        TokenFamilyRow.current_jti == bindparam("jti"),
        TokenFamilyRow.revoked.is_(False),
        TokenFamilyRow.expires_at > bindparam("now"),
    )
)


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def start_family(self, family: str, user_id: str, refresh_jti: str, expires_at: float) -> None:
        self.session.add(
            TokenFamilyRow(
                id=family, user_id=user_id, current_jti=refresh_jti, expires_at=expires_at
            )
        )
        self.session.flush()

    def rotate(self, family: str, used_jti: str, new_jti: str, expires_at: float) -> bool:
        """Move the family from ``used_jti`` to ``new_jti``; False when ``used_jti`` is stale.

        One conditional UPDATE, so two concurrent refreshes with the same token cannot both win.
        """
        result = self.session.execute(
            update(TokenFamilyRow)
            .where(
                TokenFamilyRow.id == family,
                TokenFamilyRow.current_jti == used_jti,
                TokenFamilyRow.revoked.is_(False),
            )
            .values(
                current_jti=new_jti,
                expires_at=expires_at,
                previous_jti=used_jti,
                rotated_at=time.time(),
            )
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def rotated_from(self, family: str, jti: str, since: float) -> bool:
        """Whether the live family's last rotation replaced ``jti`` at ``since`` or later."""
        found = self.session.scalar(
            select(TokenFamilyRow.id).where(
                TokenFamilyRow.id == family,
                TokenFamilyRow.previous_jti == jti,
                TokenFamilyRow.rotated_at >= since,
                TokenFamilyRow.revoked.is_(False),
                TokenFamilyRow.expires_at > time.time(),
            )
        )
        return found is not None

    def access_holder(self, user_id: str, family: str, jti: str) -> User | None:
        """The user of a live access token (family not revoked, jti not revoked), in one query."""
        row = self.session.execute(
            _ACCESS_HOLDER, {"user_id": user_id, "family": family, "jti": jti, "now": time.time()}
        ).first()
        if row is None or row[1] is not None:
            return None
        return to_user(row[0])

    def session_holder(self, user_id: str, family: str, refresh_jti: str) -> User | None:
        """The user of a live family whose current refresh token is ``refresh_jti``."""
        row = self.session.execute(
            _SESSION_HOLDER,
            {"user_id": user_id, "family": family, "jti": refresh_jti, "now": time.time()},
        ).first()
        return None if row is None else to_user(row[0])

    def revoke_family(self, family: str) -> None:
        self.session.execute(
            update(TokenFamilyRow).where(TokenFamilyRow.id == family).values(revoked=True)
        )

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        """Idempotent, concurrent calls included: two logouts of one token at once both
        succeed (a look before the insert let both insert, and the second failed)."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(
            insert(RevokedTokenRow)
            .values(jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[RevokedTokenRow.jti])
        )

    def purge_expired(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < now))
        self.session.execute(delete(TokenFamilyRow).where(TokenFamilyRow.expires_at < now))
