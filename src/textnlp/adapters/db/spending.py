"""What a user has spent, and their own spending cap.

A user's spend is the cost of their direct generations (``users.spent_usd``, a counter grown by
one atomic ``UPDATE ... SET spent_usd = spent_usd + :cost``, so concurrent requests never lose
an increment) plus the cost of their jobs (``jobs.cost_usd``, grown with each checkpoint).
Reading it is two indexed lookups; nothing is cached, so every process sees the same figure.
A direct request *reserves* its worst case by adding it to ``spent_usd`` with one conditional
``UPDATE`` (only while the user's spend plus it stays within the cap), and settles by taking
back what it did not use: requests on any replica admitted together never pass the cap. A
process that dies between the two leaves the worst case counted (an overcharge, never an
overshoot).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, Float, func, literal, select, update
from sqlalchemy.orm import sessionmaker

from textnlp.adapters.db.jobs import JobRow
from textnlp.adapters.db.users import UserRow
from textnlp.errors import NotFound, quoted


@dataclass(frozen=True)
class UserSpend:
    #: The user's own cap (None: the default applies, or the owner is not a user).
    cap_usd: float | None
    spent_usd: float


@dataclass(frozen=True)
class UserSpendRow:
    """A user with their own cap and what they spent (direct generations and jobs)."""

    user_id: str
    username: str
    role: str
    active: bool
    cap_usd: float | None
    spent_usd: float


class SpendingStore:
    def __init__(self, engine: Engine) -> None:
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def spend(self, owner_id: str) -> UserSpend:
        with self.sessions() as session:
            user = session.execute(
                select(UserRow.spending_cap_usd, UserRow.spent_usd).where(UserRow.id == owner_id)
            ).first()
            jobs = session.scalar(
                select(func.coalesce(func.sum(JobRow.cost_usd), 0.0)).where(
                    JobRow.owner_id == owner_id
                )
            )
        cap, direct = (user[0], user[1]) if user is not None else (None, 0.0)
        return UserSpend(cap_usd=cap, spent_usd=float(direct or 0.0) + float(jobs or 0.0))

    def add_direct(self, owner_id: str, cost_usd: float) -> None:
        """Count a direct generation's cost (owners that are not users have no counter)."""
        with self.sessions.begin() as session:
            session.execute(
                update(UserRow)
                .where(UserRow.id == owner_id)
                .values(spent_usd=UserRow.spent_usd + cost_usd)
            )

    def reserve(
        self, owner_id: str, amount_usd: float, default_cap_usd: float | None
    ) -> bool | None:
        """Add ``amount_usd`` to the owner's ``spent_usd`` when their spend (jobs included)
        stays within their cap with it (their own, else ``default_cap_usd``): True. False: it
        would pass the cap; None: there is nothing to reserve against (no such user, no cap).
        One statement: PostgreSQL re-checks the condition on the row a concurrent reservation
        just updated, and SQLite runs writes one at a time, so two reservations never both
        take the last of a budget."""
        jobs = (
            select(func.coalesce(func.sum(JobRow.cost_usd), 0.0))
            .where(JobRow.owner_id == owner_id)
            .scalar_subquery()
        )
        limit = func.coalesce(UserRow.spending_cap_usd, literal(default_cap_usd, Float))
        with self.sessions.begin() as session:
            result = session.execute(
                update(UserRow)
                .where(UserRow.id == owner_id, UserRow.spent_usd + amount_usd + jobs <= limit)
                .values(spent_usd=UserRow.spent_usd + amount_usd)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                return True
            cap = session.execute(
                select(UserRow.spending_cap_usd).where(UserRow.id == owner_id)
            ).first()
        if cap is None or (cap[0] is None and default_cap_usd is None):
            return None
        return False

    def set_cap(self, username: str, cap_usd: float | None) -> str:
        """Set (or with None, clear) a user's own cap; returns the user's id."""
        with self.sessions.begin() as session:
            user_id = session.scalar(select(UserRow.id).where(UserRow.username == username))
            if user_id is None:
                raise NotFound(f"no user {quoted(username)}")
            session.execute(
                update(UserRow).where(UserRow.id == user_id).values(spending_cap_usd=cap_usd)
            )
            return str(user_id)

    def users(self, limit: int = 500) -> list[UserSpendRow]:
        """Users by name (at most ``limit``) with their spend: one query, jobs summed by owner."""
        jobs = (
            select(JobRow.owner_id, func.sum(JobRow.cost_usd).label("cost"))
            .group_by(JobRow.owner_id)
            .subquery()
        )
        query = (
            select(
                UserRow.id,
                UserRow.username,
                UserRow.role,
                UserRow.active,
                UserRow.spending_cap_usd,
                UserRow.spent_usd,
                jobs.c.cost,
            )
            .outerjoin(jobs, jobs.c.owner_id == UserRow.id)
            .order_by(UserRow.username)
            .limit(limit)
        )
        with self.sessions() as session:
            rows = session.execute(query).all()
        return [
            UserSpendRow(
                user_id=row[0],
                username=row[1],
                role=row[2],
                active=bool(row[3]),
                cap_usd=row[4],
                spent_usd=float(row[5] or 0.0) + float(row[6] or 0.0),
            )
            for row in rows
        ]
