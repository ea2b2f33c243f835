"""Users and their API keys: tables and repositories.

A user has a unique name, an argon2id hash and a role (``admin`` or ``user``). API keys belong
to a user (service accounts are users too); only the SHA-256 of a key's secret is stored, and a
user holds at most ``api.max_api_keys_per_user`` live keys (revoked ones do not count).
A user may have a spending cap of their own (``spending_cap_usd``, None: the settings' default)
and counts what their direct generations cost (``spent_usd``; jobs keep their own cost).
``session_epoch`` ends every token issued in an earlier epoch: a password reset or an
operator's ``textnlp users logout`` moves it on (the families live in the session store, which
a DynamoDB table cannot list by user). A counter, not a time: a token issued while the change
commits carries the old epoch and ends with the others.
Names are unique whatever their case: ``uq_users_username_lower`` (an index on
``lower(username)``) is the database's own guarantee, and ``lock_users`` serialises the checks
that no index can express (a lookalike name, the last active admin).
Revision ``0002_auth`` creates the tables, ``0005_user_spending`` and
``0007_user_session_epoch`` add the columns, ``0009_auth_races`` the index.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from textnlp.adapters.db.base import Base
from textnlp.auth.rules import MAX_KEY_NAME
from textnlp.errors import Conflict, NotFound, quoted

RoleName = Literal["admin", "user"]

#: The PostgreSQL advisory lock (a bigint: "txtusers") that ``lock_users`` takes.
_USERS_LOCK = 0x7478_7475_7365_7273


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (
        # "Alice" beside "alice" would pass for her; the column's own constraint is exact.
        Index("uq_users_username_lower", func.lower(text("username")), unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: This user's spending cap in US dollars; None: ``models.user_spending_cap_usd`` applies.
    spending_cap_usd: Mapped[float | None] = mapped_column(Float, default=None)
    #: Estimated cost of the user's direct generations (text, invoke, streams), in US dollars.
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    #: Tokens issued in another epoch (their ``session_epoch`` claim) no longer count.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(MAX_KEY_NAME))
    secret_hash: Mapped[str] = mapped_column(String(64))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


@dataclass(frozen=True)
class User:
    """A user as the rest of the code sees it (never the password hash)."""

    id: str
    username: str
    role: RoleName
    active: bool = True
    #: Tokens issued in another epoch no longer count (``AuthService.end_sessions``).
    session_epoch: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def to_user(row: UserRow) -> User:
    role: RoleName = "admin" if row.role == "admin" else "user"
    return User(
        id=row.id,
        username=row.username,
        role=role,
        active=row.active,
        session_epoch=row.session_epoch or 0,
    )


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_users(self) -> None:
        """Serialise the changes whose checks read other users (a new name against the
        existing ones, the last active admin) until this transaction ends: without it two
        replicas or CLI processes could each pass the check before either writes. PostgreSQL:
        a transaction-level advisory lock. SQLite: a write that matches nothing makes the
        transaction the database's one writer now, before its reads (a deferred transaction
        would read, then find another writer had come in between)."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(select(func.pg_advisory_xact_lock(_USERS_LOCK)))
        else:
            self.session.execute(update(UserRow).where(text("0 = 1")).values(role=UserRow.role))

    def create(self, username: str, password_hash: str, role: RoleName = "user") -> User:
        """A new user; ``Conflict`` where the name is taken whatever its case (callers that
        check more than the name hold ``lock_users``; the index decides the rest)."""
        same = func.lower(UserRow.username) == username.lower()
        existing = self.session.scalar(select(UserRow.username).where(same))
        if existing is not None:  # "Alice" beside "alice" would pass for her
            raise Conflict(f"user {existing!r} already exists", username=username)
        row = UserRow(
            id=str(uuid.uuid4()), username=username, password_hash=password_hash, role=role
        )
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise Conflict(f"user {username!r} already exists", username=username) from None
        return to_user(row)

    def by_name(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash."""
        row = self.session.scalar(select(UserRow).where(UserRow.username == username))
        return (to_user(row), row.password_hash) if row else None

    def get(self, user_id: str) -> User | None:
        row = self.session.get(UserRow, user_id)
        return to_user(row) if row else None

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        row = self.session.get(UserRow, user_id)
        if row is None:
            raise NotFound("no such user")
        row.password_hash = password_hash

    def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """id -> username of those of ``user_ids`` that exist."""
        ids = set(user_ids)
        if not ids:
            return {}
        query = select(UserRow.id, UserRow.username).where(UserRow.id.in_(ids))
        return {str(user_id): str(name) for user_id, name in self.session.execute(query)}

    def usernames(self) -> list[str]:
        return list(self.session.scalars(select(UserRow.username)))

    def all(self) -> list[User]:
        return [
            to_user(row) for row in self.session.scalars(select(UserRow).order_by(UserRow.username))
        ]

    def update(self, user_id: str, **values: object) -> None:
        """Set columns of one user (``active``, ``role``, ``password_hash``)."""
        self.session.execute(update(UserRow).where(UserRow.id == user_id).values(**values))

    def next_session_epoch(self, user_id: str) -> None:
        """End every token the user holds now (in SQL: concurrent ends each count)."""
        self.session.execute(
            update(UserRow)
            .where(UserRow.id == user_id)
            .values(session_epoch=UserRow.session_epoch + 1)
        )

    def count_active_admins(self) -> int:
        admins = select(func.count()).where(UserRow.role == "admin", UserRow.active.is_(True))
        return int(self.session.scalar(admins) or 0)


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, key_id: str, user_id: str, name: str, secret_hash: str, *, max_active: int | None
    ) -> None:
        """Add a key unless the user already holds ``max_active`` live ones (``Conflict``;
        None: no cap, for the operator's ``textnlp users api-key``).

        The user's row is locked first (``FOR UPDATE``), so on PostgreSQL concurrent requests
        cannot each count one key short of the cap and all add one. (SQLite has no row locks;
        it is the local profile, whose writers the file lock serialises.)
        """
        if max_active is not None:
            self._check_cap(user_id, max_active)
        self.session.add(ApiKeyRow(id=key_id, user_id=user_id, name=name, secret_hash=secret_hash))
        self.session.flush()

    def _check_cap(self, user_id: str, max_active: int) -> None:
        self.session.execute(
            select(UserRow.id).where(UserRow.id == user_id).with_for_update()
        ).first()
        if self.count_active(user_id) >= max_active:
            raise Conflict(
                f"you have {max_active} active API keys, the most allowed; revoke one first",
                max_active=max_active,
            )

    def count_active(self, user_id: str) -> int:
        count = self.session.scalar(
            select(func.count())
            .select_from(ApiKeyRow)
            .where(ApiKeyRow.user_id == user_id, ApiKeyRow.revoked.is_(False))
        )
        return int(count or 0)

    def find(self, key_id: str) -> tuple[str, str] | None:
        """(user id, secret hash) of a live key."""
        row = self.session.get(ApiKeyRow, key_id)
        if row is None or row.revoked:
            return None
        return row.user_id, row.secret_hash

    def list_for(self, user_id: str) -> list[ApiKeyRow]:
        return list(
            self.session.scalars(
                select(ApiKeyRow).where(ApiKeyRow.user_id == user_id).order_by(ApiKeyRow.created_at)
            )
        )

    def revoke(self, key_id: str, user_id: str) -> None:
        """Revoke the caller's own key; another user's key is "not found" (owner isolation)."""
        row = self.session.get(ApiKeyRow, key_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no API key {quoted(key_id)}")
        row.revoked = True
