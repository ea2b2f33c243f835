"""What a user has spent, and their own spending cap.

A user's spend is the cost of their direct generations (``users.spent_usd``, a counter grown by
one atomic ``UPDATE ... SET spent_usd = spent_usd + :cost``, so concurrent requests never lose
an increment) plus the cost of their jobs (``jobs.cost_usd``, grown with each checkpoint) plus
what their jobs' runs hold (``job_holds``: the worst case of requests in flight and the cost of
answers not yet stored). Reading it is three indexed lookups; nothing is cached, so every
process sees the same figure.

A reservation takes a lock of the owner (PostgreSQL: an advisory lock; SQLite's write lock),
reads their spend and, when the amount still fits their cap, adds it, in one transaction: two
reservations of one owner, from any replica or worker, direct or a job's, never both take the
last of a budget. A direct request reserves in ``spent_usd`` and settles by taking back what it
did not use; a process that dies between the two leaves the worst case counted (an overcharge,
never an overshoot). A job's request reserves in its run's hold and settles there; a store of
records moves their cost to the job's ``cost_usd``. A run's hold counts while its lease lasts:
its worker renews it while the run goes on and drops it when the run ends, so a worker that
dies holds nothing back once the lease runs out. Leases are written and compared on the
database's clock (``clock``), the one that every host shares: a worker whose own clock is off
neither ends other workers' holds early nor keeps dead ones. The worst case of a provider batch
is held apart (``lasting_s``): it outlives the run (a stop, a crash, an outage) until the
provider is done with the batch or the job's next run holds it again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Engine, case, delete, false, func, insert, literal, select, update
from sqlalchemy.orm import Session, sessionmaker

from textnlp.adapters.db.clock import db_clock
from textnlp.adapters.db.jobs import JobHoldRow, JobRow
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


def _jobs_cost(owner_id: str) -> Any:
    """What the owner's jobs cost (their stored records)."""
    cost = func.coalesce(func.sum(JobRow.cost_usd), 0.0)
    return select(cost).where(JobRow.owner_id == owner_id)


def _counted() -> Any:
    """What a run's hold counts now: its amount while its lease lasts, its provider batch's
    worst case while the provider may run it."""
    now = db_clock()
    amount = case((JobHoldRow.held_until > now, JobHoldRow.amount_usd), else_=0.0)
    return amount + _live_batch()


def _live_batch() -> Any:
    """A hold's provider batch's worst case while the provider may still run it, else 0."""
    return case((JobHoldRow.batch_until > db_clock(), JobHoldRow.batch_usd), else_=0.0)


def _live_holds(owner_id: str) -> Any:
    """What the owner's jobs' runs hold now."""
    held = func.coalesce(func.sum(_counted()), 0.0)
    return select(held).where(JobHoldRow.owner_id == owner_id)


def _others_of_job(hold_id: str) -> Any:
    """The holds of the job of ``hold_id`` but that one."""
    job = select(JobHoldRow.job_id).where(JobHoldRow.id == hold_id).scalar_subquery()
    return (JobHoldRow.job_id == job) & (JobHoldRow.id != hold_id)


def _earlier_batches(hold_id: str) -> Any:
    """What the job's other runs hold now of its provider batch."""
    return select(func.coalesce(func.sum(_live_batch()), 0.0)).where(_others_of_job(hold_id))


def _take_over_batch(session: Session, hold_id: str) -> None:
    """The run of ``hold_id`` holds the job's provider batch now: the job's other runs (an
    ended one's kept hold, a duplicate delivery's) hold it no more. One statement over the
    job's holds, its own included: two runs taking over at once lock them in one order (one
    by one, each locking the other's first, they could deadlock)."""
    job = select(JobHoldRow.job_id).where(JobHoldRow.id == hold_id).scalar_subquery()
    session.execute(
        update(JobHoldRow)
        .where(JobHoldRow.job_id == job)
        .values(batch_usd=case((JobHoldRow.id == hold_id, JobHoldRow.batch_usd), else_=0.0))
        .execution_options(synchronize_session=False)
    )


_HOLD_COLUMNS = [
    "id",
    "job_id",
    "owner_id",
    "amount_usd",
    "held_until",
    "batch_usd",
    "batch_until",
]


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
        """One statement, so one snapshot: a store that moves a cost from a run's hold to its
        job, or a delete that moves it from the job to the user, is seen whole or not at all
        (read in parts under READ COMMITTED, the cost could be in neither)."""
        user = select(UserRow.spending_cap_usd, UserRow.spent_usd).where(UserRow.id == owner_id)
        figures = select(
            user.with_only_columns(UserRow.spending_cap_usd).scalar_subquery(),
            user.with_only_columns(UserRow.spent_usd).scalar_subquery(),
            _jobs_cost(owner_id).scalar_subquery(),
            _live_holds(owner_id).scalar_subquery(),
        )
        cap, direct, jobs, held = session.execute(figures).one()
        spent = float(direct or 0.0) + float(jobs or 0.0) + float(held or 0.0)
        return UserSpend(cap_usd=cap, spent_usd=spent)

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
        hold_id: str | None = None,
        lasting_s: float | None = None,
    ) -> bool | None:
        """Hold ``amount_usd`` in the owner's spend when their spend (jobs' costs and holdings
        included) stays within their cap with it (their own, else ``default_cap_usd``): True.
        False: it would pass the cap; None: there is nothing to reserve against (no such user,
        no cap). A direct request's goes to ``users.spent_usd``, a job's to its run's hold
        (``hold_id``; even without a cap: its settlement takes it back), a provider batch's
        apart, for ``lasting_s``. The owner is locked before their spend is read, so the check
        and the update are one step for every other reservation of theirs."""
        with self.sessions.begin() as session:
            self._lock_owner(session, owner_id)
            user = session.execute(
                select(UserRow.spending_cap_usd).where(UserRow.id == owner_id)
            ).first()
            if user is None and hold_id is None:  # only users make direct requests
                return None
            # A job's owner need not be a user (the CLI's local owner): the default applies.
            limit = user[0] if user is not None and user[0] is not None else default_cap_usd
            # A provider batch's first hold takes the job's over from its earlier runs (one
            # that died before the batch was written down): that much is not spent twice.
            earlier = 0.0
            if hold_id is not None and lasting_s is not None:
                earlier = float(session.scalar(_earlier_batches(hold_id)) or 0.0)
            spent = self._spend(session, owner_id).spent_usd - earlier
            if limit is not None and spent + amount_usd > limit:
                return False
            if hold_id is None:
                if limit is None:
                    return None
                session.execute(
                    update(UserRow)
                    .where(UserRow.id == owner_id)
                    .values(spent_usd=UserRow.spent_usd + amount_usd)
                )
            else:
                if lasting_s is not None:
                    _take_over_batch(session, hold_id)
                self._add(session, hold_id, amount_usd, lasting_s)
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
        """What the owner's jobs' runs other than the one holding ``but`` hold."""
        with self.sessions() as session:
            held = session.scalar(_live_holds(owner_id).where(JobHoldRow.id != but))
        return float(held or 0.0)

    # -- a job's runs' holds ------------------------------------------------------------------
    def held_by_job(self, job_id: str) -> float:
        """What the job's runs hold now against its owner's cap."""
        held = func.coalesce(func.sum(_counted()), 0.0)
        with self.sessions() as session:
            return float(session.scalar(select(held).where(JobHoldRow.job_id == job_id)) or 0.0)

    def open_hold(self, job_id: str, lease_s: float) -> str:
        """A new run of the job holds from now, for ``lease_s`` unless renewed; returns its
        hold's id (a job gone meanwhile gets none: every change of it changes nothing). The
        job's other holds stay as they are: a dead worker's counts nothing once its lease ran
        out, but a worker stalled past it (a paused host, a partition) renews it when it comes
        back, and its requests must then count again (deleted, they went on held nowhere); a
        provider batch's worst case stays held by the run that held it until this run holds it
        again from the job's manifest (``hold``, ``reserve``: taken over), not only from now
        on: the batch runs on meanwhile, and this run may fail, or wait out an outage, before
        it reads the manifest. The job's end drops them (``JobStore``)."""
        hold_id = uuid.uuid4().hex
        row = select(
            literal(hold_id),
            JobRow.id,
            JobRow.owner_id,
            literal(0.0),
            db_clock(lease_s),
            literal(0.0),
            literal(None, DateTime(timezone=True)),
        ).where(JobRow.id == job_id)
        with self.sessions.begin() as session:
            session.execute(insert(JobHoldRow).from_select(_HOLD_COLUMNS, row))
        return hold_id

    def renew_hold(self, hold_id: str, lease_s: float) -> None:
        """The run goes on: its hold counts for ``lease_s`` more."""
        until = db_clock(lease_s)
        with self.sessions.begin() as session:
            session.execute(
                update(JobHoldRow).where(JobHoldRow.id == hold_id).values(held_until=until)
            )

    def release_hold(self, hold_id: str) -> None:
        """The run ended: it holds nothing more but the worst case of a provider batch it left
        running, under a new id (a renewal in flight never lengthens it) until the provider is
        done with it or the job's next run holds it again. What the run spent is in the job's
        ``cost_usd``; answers it made and did not store are made again, and counted, by the
        run that stores them."""
        now = db_clock()
        kept = select(
            literal(uuid.uuid4().hex),
            JobHoldRow.job_id,
            JobHoldRow.owner_id,
            literal(0.0),
            now,
            JobHoldRow.batch_usd,
            JobHoldRow.batch_until,
        ).where(JobHoldRow.id == hold_id, JobHoldRow.batch_usd > 0.0, JobHoldRow.batch_until > now)
        with self.sessions.begin() as session:
            session.execute(insert(JobHoldRow).from_select(_HOLD_COLUMNS, kept))
            session.execute(delete(JobHoldRow).where(JobHoldRow.id == hold_id))

    def hold(self, hold_id: str, amount_usd: float, *, lasting_s: float | None = None) -> None:
        """Hold ``amount_usd`` in the run's hold without a check: it is committed already (a
        provider batch that runs on, held for ``lasting_s``), and counts against everything
        after it. A provider batch's (``lasting_s``, 0 too: none of it runs on) takes over
        what the job's other runs held of it, in the same transaction."""
        with self.sessions.begin() as session:
            if lasting_s is not None:
                _take_over_batch(session, hold_id)
            self._add(session, hold_id, amount_usd, lasting_s)

    def settle(
        self, hold_id: str, held_usd: float, cost_usd: float, *, lasting: bool = False
    ) -> None:
        """A job's request that held ``held_usd`` ended having cost ``cost_usd``: its run holds
        that instead until the records it made are stored (``JobStore.save_records``). A
        provider batch's (``lasting``) is no longer held: its answers are counted as they are
        collected."""
        with self.sessions.begin() as session:
            if lasting:
                self._add(session, hold_id, -held_usd, 0.0)  # shrinks: its time is unchanged
                self._add(session, hold_id, cost_usd, None)
            else:
                self._add(session, hold_id, cost_usd - held_usd, None)

    @staticmethod
    def _add(session: Session, hold_id: str, amount_usd: float, lasting_s: float | None) -> None:
        """Grow (or shrink, never below 0) a run's hold, or with ``lasting_s`` its provider
        batch's, which then counts for that long; nothing when it is gone (the job ended or
        was deleted)."""
        if lasting_s is None:
            amount = JobHoldRow.amount_usd + amount_usd
            values: dict[str, Any] = {"amount_usd": _at_least_zero(amount)}
        else:
            batch = JobHoldRow.batch_usd + amount_usd
            values = {"batch_usd": _at_least_zero(batch)}
            if amount_usd > 0:
                values["batch_until"] = db_clock(lasting_s)
        session.execute(update(JobHoldRow).where(JobHoldRow.id == hold_id).values(**values))

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
        holds = (
            select(JobHoldRow.owner_id, func.sum(_counted()).label("held"))
            .group_by(JobHoldRow.owner_id)
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
                holds.c.held,
            )
            .outerjoin(jobs, jobs.c.owner_id == UserRow.id)
            .outerjoin(holds, holds.c.owner_id == UserRow.id)
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
                spent_usd=float(row[5] or 0.0) + float(row[6] or 0.0) + float(row[7] or 0.0),
            )
            for row in rows
        ]
