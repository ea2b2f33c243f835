"""What a user has spent, and their own spending cap.

A user's spend is the cost of their direct generations (``users.spent_usd``, a counter grown by
one atomic ``UPDATE ... SET spent_usd = spent_usd + :cost``, so concurrent requests never lose
an increment) plus the cost of their jobs (``jobs.cost_usd``, grown with each checkpoint) plus
what their running jobs hold (``jobs.reserved_usd``: the worst case of requests in flight and
the cost of answers not yet stored). Reading it is two indexed lookups; nothing is cached, so
every process sees the same figure.

A reservation takes a lock of the owner (PostgreSQL: an advisory lock; SQLite's write lock),
reads their spend and, when the amount still fits their cap, adds it, in one transaction: two
reservations of one owner, from any replica or worker, direct or a job's, never both take the
last of a budget. A direct request reserves in ``spent_usd`` and settles by taking back what it
did not use; a process that dies between the two leaves the worst case counted (an overcharge,
never an overshoot). A job's request reserves in its job's ``reserved_usd`` and settles there;
a store of records moves their cost to ``cost_usd``. A job holds nothing once its attempt ends:
a new attempt (the one after a crashed worker's) starts from 0 and so does every end
(``JobStore``), so a dead worker's reservation never outlives its job's next delivery; but an
attempt handing back a provider batch still running keeps its worst case (``hold_job``), and
the next attempt holds it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, false, func, select, update
from sqlalchemy.orm import Session, sessionmaker

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


def _jobs_spend(owner_id: str) -> Any:
    """What the owner's jobs cost and hold (their stored records' cost, their reservations)."""
    held = func.coalesce(JobRow.cost_usd, 0.0) + JobRow.reserved_usd
    return select(func.coalesce(func.sum(held), 0.0)).where(JobRow.owner_id == owner_id)


def _at_least_zero(amount: Any) -> Any:
    return case((amount > 0.0, amount), else_=0.0)


class SpendingStore:
    def __init__(self, engine: Engine) -> None:
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"

    def spend(self, owner_id: str) -> UserSpend:
        with self.sessions() as session:
            return self._spend(session, owner_id)

    @staticmethod
    def _spend(session: Session, owner_id: str) -> UserSpend:
        user = session.execute(
            select(UserRow.spending_cap_usd, UserRow.spent_usd).where(UserRow.id == owner_id)
        ).first()
        jobs = session.scalar(_jobs_spend(owner_id))
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
        self,
        owner_id: str,
        amount_usd: float,
        default_cap_usd: float | None,
        *,
        job_id: str | None = None,
    ) -> bool | None:
        """Hold ``amount_usd`` in the owner's spend when their spend (jobs' costs and holdings
        included) stays within their cap with it (their own, else ``default_cap_usd``): True.
        False: it would pass the cap; None: there is nothing to reserve against (no such user,
        no cap). A direct request's goes to ``users.spent_usd``, a job's (``job_id``) to its
        ``reserved_usd`` (even without a cap: its settlement takes it back). The owner's row is
        locked before their spend is read, so the check and the update are one step for every
        other reservation of theirs."""
        with self.sessions.begin() as session:
            self._lock_owner(session, owner_id)
            user = session.execute(
                select(UserRow.spending_cap_usd).where(UserRow.id == owner_id)
            ).first()
            if user is None and job_id is None:  # only users make direct requests
                return None
            # A job's owner need not be a user (the CLI's local owner): the default applies.
            limit = user[0] if user is not None and user[0] is not None else default_cap_usd
            if limit is not None and self._spend(session, owner_id).spent_usd + amount_usd > limit:
                return False
            if job_id is None:
                if limit is None:
                    return None
                session.execute(
                    update(UserRow)
                    .where(UserRow.id == owner_id)
                    .values(spent_usd=UserRow.spent_usd + amount_usd)
                )
            else:
                session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id)
                    .values(reserved_usd=JobRow.reserved_usd + amount_usd)
                )
            return limit is not None or None

    def _lock_owner(self, session: Session, owner_id: str) -> None:
        """Hold a lock of the owner (PostgreSQL: a transaction advisory lock of their id, which
        needs no row: a job's owner may be no user) or the database's write lock (SQLite)
        until the transaction ends; the reads after it see every reservation committed
        before."""
        if self._postgres:
            session.execute(select(func.pg_advisory_xact_lock(func.hashtext(owner_id))))
        else:
            session.execute(update(UserRow).where(false()).values(id=UserRow.id))

    def held(self, owner_id: str, *, but: str) -> float:
        """What the owner's jobs other than ``but`` hold (``reserved_usd``)."""
        with self.sessions() as session:
            held = session.scalar(
                select(func.coalesce(func.sum(JobRow.reserved_usd), 0.0)).where(
                    JobRow.owner_id == owner_id, JobRow.id != but
                )
            )
        return float(held or 0.0)

    def hold_job(self, job_id: str, amount_usd: float) -> None:
        """Hold ``amount_usd`` in the job's ``reserved_usd`` without a check: it is committed
        already (a provider batch that runs on), and counts against everything after it."""
        with self.sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(reserved_usd=JobRow.reserved_usd + amount_usd)
            )

    def settle_job(self, job_id: str, held_usd: float, cost_usd: float) -> None:
        """A job's request that held ``held_usd`` ended having cost ``cost_usd``: the job holds
        that instead until the records it made are stored (``JobStore.save_records``)."""
        with self.sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(reserved_usd=_at_least_zero(JobRow.reserved_usd - held_usd + cost_usd))
            )

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
        held = func.coalesce(JobRow.cost_usd, 0.0) + JobRow.reserved_usd
        jobs = (
            select(JobRow.owner_id, func.sum(held).label("cost"))
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
