"""Spending: the one place that decides what a piece of work may spend.

Three layers, one owner each: ``backends.pricing`` says what a request costs and holds the
mechanism (``SpendingCap``, ``CappedBackend``); ``adapters.db.spending`` records what users
spent; this module is the policy, and everything else (API routes, job service, worker, CLI,
library) asks it instead of building caps itself.

Caps:

- a **user's** cap is their own (``users.spending_cap_usd``) or the settings' default
  (``models.user_spending_cap_usd``); None means no cap. Spend is what the user's direct
  generations and jobs cost. Only priced models are limited: a model without a price costs
  nothing, so the embedded model is never refused;
- a **job's** cap is its ``max_cost_usd``, else ``models.job_spending_cap_usd``;
- a **run's** cap is the ``--max-cost`` of one dataset run (CLI, library).

They are applied at admission (``check``: the API's text and invoke routes and batch submits
refuse with ``QuotaExceeded``, HTTP 429 without ``Retry-After``, once the cap is reached) and
while work runs. A direct request ``reserve``s its worst case (its prompt as the model reads it,
chat template included, + ``max_tokens``) in the owner's recorded spend, atomically, before it
runs, and ``settle``s after with what it cost, or, cut short (a client gone, an error), with
what it generated: concurrent requests, on any replica, never pass the cap together. A run is
wrapped in its caps (``Budget``), so it stops before it passes one. A job's requests reserve
their worst case against the owner's cap in the database too (``HeldSpendingCap``: in the run's
hold, until the records they made are stored), so the owner's jobs and direct requests, on any
worker or replica, never pass it together. A run's hold is leased (``hold_lease_s``) and renewed
by its worker while the run goes on: a dead worker's holds stop counting when the lease runs out;
a run holds nothing once it ends. The worst case of a provider batch is held apart
(``lasting``), whatever becomes of the run, for ``KEPT_BATCH_S`` or until the job's next run
holds it again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textnlp.backends.base import Backend
from textnlp.backends.pricing import CappedBackend, PriceTable, SpendingCap, usd
from textnlp.backends.spec import ModelSpec
from textnlp.config import Settings
from textnlp.domain import Completion
from textnlp.errors import InvalidParameter, QuotaExceeded

#: Reservations refused while ``check`` finds room (others settled meanwhile) before giving up.
_RESERVE_TRIES = 5
#: Polls (``HeldSpendingCap.poll_s`` apart) a job's request waits for room that the owner's
#: other jobs hold in flight before it is refused: their holdings include what they made and
#: have not stored yet, which a job waiting itself may never store.
HOLD_WAITS = 30
#: A run's hold counts for this many of its worker's heartbeats (``queue.heartbeat_s``) after
#: the last renewal: a late beat or two on a busy worker does not drop what it holds.
HOLD_LEASE_BEATS = 6
#: How long a provider batch's worst case stays held from its submit (or its last hold): the
#: providers' window (24 hours: OpenAI's, Anthropic's, Bedrock's default), and one more hour
#: for the job's next run to take it over.
KEPT_BATCH_S = 25 * 3600.0

if TYPE_CHECKING:  # the store needs SQLAlchemy (the api extra); a CLI run with a cap does not
    from textnlp.adapters.db.spending import SpendingStore


@dataclass(frozen=True)
class UserBudget:
    """A user's cap as it applies (None: no cap) and what they have spent."""

    user_id: str
    limit_usd: float | None
    spent_usd: float


@dataclass(frozen=True)
class Reservation:
    """A direct request's worst case, held in its owner's spend until it settles."""

    owner_id: str
    #: What is held (0: no cap or no price: nothing to hold back).
    held_usd: float
    #: The request's worst case: what it is charged when nothing better is known.
    worst_usd: float


@dataclass(frozen=True)
class UserSpending:
    """A user as the admin page lists them: the cap that applies (None: none) and the spend."""

    user_id: str
    username: str
    role: str
    active: bool
    limit_usd: float | None
    spent_usd: float


class Budget:
    """The caps one run works under; ``apply`` wraps a backend in them (innermost first).

    A budget belongs to one run; its caps may wrap several backends (a recipe's columns with
    their own models): a request waiting for room is woken by any settlement under the cap.
    """

    def __init__(self, prices: PriceTable, caps: tuple[SpendingCap, ...] = ()) -> None:
        self.prices = prices
        self.caps = caps

    def apply(self, backend: Backend) -> Backend:
        for cap in self.caps:
            backend = CappedBackend(backend, cap, self.prices)
        return backend


class HeldSpendingCap(SpendingCap):
    """A job's share of its owner's cap, held in the database: each request reserves its worst
    case in the run's hold (``SpendingStore.reserve``) against everything the owner spent and
    holds, on any worker or replica, and settles there; the job's stores move the cost to the
    job. A request that does not fit waits while the job's own requests in flight may leave
    room, as under any cap, or, for up to ``HOLD_WAITS`` polls, while the owner's other jobs
    hold what it needs in flight; it is refused otherwise."""

    blocking = True
    poll_s = 1.0

    def __init__(
        self,
        limit_usd: float,
        *,
        store: SpendingStore,
        owner_id: str,
        hold_id: str,
        default_cap_usd: float | None,
        spent_usd: float = 0.0,
    ) -> None:
        super().__init__(limit_usd, spent_usd=spent_usd, name=f"user {owner_id}")
        self._store = store
        self._owner_id = owner_id
        self._hold_id = hold_id
        self._default = default_cap_usd

    def _learn(self) -> None:
        """What the owner spent and holds, less what this job's requests in flight hold."""
        spent = self._store.spend(self._owner_id).spent_usd
        with self._lock:
            self._spent = max(0.0, spent - self._reserved)

    def check(self, estimated: float) -> None:
        self._learn()
        super().check(estimated)

    def reserve(self, estimated: float, *, lasting: bool = False) -> None:
        if estimated <= 0:  # nothing costs nothing: never refused, nothing to hold
            return
        held = self._store.reserve(
            self._owner_id,
            estimated,
            self._default,
            hold_id=self._hold_id,
            lasting_s=KEPT_BATCH_S if lasting else None,
        )
        if held is False:
            self._learn()
            with self._lock:
                raise self._refuse(estimated)
        with self._lock:
            self._reserved += estimated

    def hold(self, committed: float, *, lasting: bool = False) -> None:
        if committed <= 0 and not lasting:
            return
        # A provider batch's, even of nothing: this run takes it over from the job's earlier
        # runs, which held it until now (``SpendingStore.hold``).
        self._store.hold(
            self._hold_id, max(committed, 0.0), lasting_s=KEPT_BATCH_S if lasting else None
        )
        super().hold(max(committed, 0.0))

    def could_fit(self, estimated: float, waited: int = 0) -> bool:
        if super().could_fit(estimated):  # this job's own requests in flight may leave room
            return True
        if waited >= HOLD_WAITS:  # each request's own count: waiters do not share it
            return False
        # Read now, not at the refusal: another job that let go since leaves room already.
        others = self._store.held(self._owner_id, but=self._hold_id)
        spent = self._store.spend(self._owner_id).spent_usd
        with self._lock:
            return spent - self._reserved - others + estimated <= self.limit_usd

    def settle(self, reserved: float, actual: float | None, *, lasting: bool = False) -> None:
        if reserved > 0 or actual:
            self._store.settle(self._hold_id, reserved, actual or 0.0, lasting=lasting)
        super().settle(reserved, actual)


class SpendingService:
    def __init__(
        self, settings: Settings, prices: PriceTable, store: Callable[[], SpendingStore]
    ) -> None:
        self.settings = settings
        self.prices = prices
        # Opened on first use: a dataset run with only a --max-cost never needs the database.
        self._store_factory = store
        self._store: SpendingStore | None = None

    @property
    def store(self) -> SpendingStore:
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    def priced(self, spec: ModelSpec) -> bool:
        return self.prices.price(spec) is not None

    # -- users ------------------------------------------------------------------------------
    def _limit(self, cap_usd: float | None) -> float | None:
        """The cap that applies to a user whose own is ``cap_usd``."""
        return cap_usd if cap_usd is not None else self.settings.models.user_spending_cap_usd

    def check(self, owner_id: str, spec: ModelSpec, worst_usd: float = 0.0) -> None:
        """Refuse (``QuotaExceeded``) when the owner's spend has reached their cap, or would
        pass it by ``worst_usd`` more (a request's worst case: prompt + ``max_tokens``)."""
        if not self.priced(spec):
            return
        spend = self.store.spend(owner_id)
        limit = self._limit(spend.cap_usd)
        if limit is None:
            return
        if spend.spent_usd >= limit:
            raise QuotaExceeded(
                f"spending cap reached: {usd(spend.spent_usd)} spent of the {usd(limit)} "
                f"allowed for this user; {spec.id} has a price (models without one still work)",
                limit_usd=limit,
                spent_usd=round(spend.spent_usd, 6),
            )
        if spend.spent_usd + worst_usd > limit:
            raise QuotaExceeded(
                f"spending cap: {usd(spend.spent_usd)} spent of the {usd(limit)} allowed for "
                f"this user, and this request may cost up to {usd(worst_usd)} (its prompt and "
                "max_tokens): ask for fewer tokens",
                limit_usd=limit,
                spent_usd=round(spend.spent_usd, 6),
            )

    def reserve(self, owner_id: str, spec: ModelSpec, worst_usd: float) -> Reservation:
        """Reserve ``worst_usd`` (a request's worst case) from the owner's cap before it runs,
        in their recorded spend; ``QuotaExceeded`` as ``check`` says when it does not fit.
        Nothing is held without a price or a cap; ``settle`` counts the cost either way."""
        if not self.priced(spec) or worst_usd <= 0:
            self.check(owner_id, spec, worst_usd)
            return Reservation(owner_id, 0.0, worst_usd)
        default = self.settings.models.user_spending_cap_usd
        for _ in range(_RESERVE_TRIES):
            reserved = self.store.reserve(owner_id, worst_usd, default)
            if reserved is None:  # no cap applies (or no user): nothing to hold back
                return Reservation(owner_id, 0.0, worst_usd)
            if reserved:
                return Reservation(owner_id, worst_usd, worst_usd)
            # Refused: ``check`` says why; when it passes, other work settled since: again.
            self.check(owner_id, spec, worst_usd)
        spend = self.store.spend(owner_id)
        raise QuotaExceeded(
            "spending cap: this user's requests in flight hold the rest of the budget",
            limit_usd=self._limit(spend.cap_usd),
            spent_usd=round(spend.spent_usd, 6),
        )

    def settle(self, reservation: Reservation, cost_usd: float) -> None:
        """A reserved request ended having cost ``cost_usd``: count that instead of what it
        held."""
        if cost_usd != reservation.held_usd:
            self.store.add_direct(reservation.owner_id, cost_usd - reservation.held_usd)

    def spent(self, owner_id: str) -> float:
        """What the owner has spent in all, as recorded (direct generations and jobs)."""
        return self.store.spend(owner_id).spent_usd

    def record(self, owner_id: str, cost_usd: float) -> None:
        """Count what a direct generation cost."""
        if cost_usd > 0:
            self.store.add_direct(owner_id, cost_usd)

    def users(self, limit: int = 500) -> list[UserSpending]:
        """Users by name (at most ``limit``), each with the cap that applies and their spend."""
        return [
            UserSpending(
                user_id=row.user_id,
                username=row.username,
                role=row.role,
                active=row.active,
                limit_usd=self._limit(row.cap_usd),
                spent_usd=row.spent_usd,
            )
            for row in self.store.users(limit)
        ]

    def set_user_cap(self, username: str, cap_usd: float | None) -> UserBudget:
        """Set (None: clear) a user's own cap; returns the cap that now applies."""
        if cap_usd is not None and not (math.isfinite(cap_usd) and cap_usd >= 0):
            raise InvalidParameter(f"a spending cap is 0 or more US dollars (got {cap_usd})")
        user_id = self.store.set_cap(username, cap_usd)
        spend = self.store.spend(user_id)
        return UserBudget(user_id, self._limit(spend.cap_usd), spend.spent_usd)

    # -- a job's runs' holds -----------------------------------------------------------------
    @property
    def hold_lease_s(self) -> float:
        """How long a run's hold counts after its last renewal (its worker renews it every
        ``queue.heartbeat_s``)."""
        return HOLD_LEASE_BEATS * self.settings.queue.heartbeat_s

    def open_hold(self, job_id: str) -> str:
        """A run of the job starts: its hold's id (``SpendingStore.open_hold``)."""
        return self.store.open_hold(job_id, self.hold_lease_s)

    def renew_hold(self, hold_id: str) -> None:
        self.store.renew_hold(hold_id, self.hold_lease_s)

    def release_hold(self, hold_id: str) -> None:
        """The run ended: it holds nothing more but the worst case of a provider batch it left
        running (for ``KEPT_BATCH_S``, or until the job's next run holds it again)."""
        self.store.release_hold(hold_id)

    def _user_cap(self, hold_id: str, owner_id: str) -> SpendingCap | None:
        """The owner's cap as a run of the job spends from it (None: no cap): held in the
        database, shared with the owner's other work. Whatever models the run calls (a
        recipe's columns may name their own): a request to one without a price costs nothing
        and touches neither the cap nor the database."""
        spend = self.store.spend(owner_id)
        limit = self._limit(spend.cap_usd)
        if limit is None:
            return None
        return HeldSpendingCap(
            limit,
            store=self.store,
            owner_id=owner_id,
            hold_id=hold_id,
            default_cap_usd=self.settings.models.user_spending_cap_usd,
            spent_usd=spend.spent_usd,
        )

    # -- runs and jobs ----------------------------------------------------------------------
    def job_limit(self, job_spec: Mapping[str, Any]) -> float | None:
        """The cap of a stored job spec: its own ``max_cost_usd``, else the settings' default."""
        own = job_spec.get("max_cost_usd")
        return float(own) if own is not None else self.settings.models.job_spending_cap_usd

    def run_budget(self, max_cost_usd: float | None) -> Budget:
        """The budget of one dataset run with its own cap (``--max-cost``; None: none)."""
        if max_cost_usd is None:
            return Budget(self.prices)
        if max_cost_usd < 0:
            raise InvalidParameter(f"the spending cap must be at least 0 (got {max_cost_usd})")
        # Named for the library and the CLI alike.
        cap = SpendingCap(max_cost_usd, name="this run (max_cost_usd / --max-cost)")
        return Budget(self.prices, (cap,))

    def job_budget(
        self,
        job_id: str,
        job_spec: Mapping[str, Any],
        *,
        owner_id: str,
        spent_usd: float,
        hold_id: str,
    ) -> Budget:
        """The budget of a run of a job: the job's cap (seeded with what it spent already, so
        a resumed job goes on with what it had left) inside its owner's remaining budget, held
        in the run's hold (``hold_id``, from ``open_hold``)."""
        caps: list[SpendingCap] = []
        limit = self.job_limit(job_spec)
        if limit is not None:
            caps.append(
                SpendingCap(limit, spent_usd=spent_usd, name=f"job {job_id} (max_cost_usd)")
            )
        user_cap = self._user_cap(hold_id, owner_id)
        if user_cap is not None:
            caps.append(user_cap)
        return Budget(self.prices, tuple(caps))


def cost_of(completions: list[Completion]) -> float:
    """What completions cost now: priced ones, less answers from the cache."""
    return sum(c.usage.cost_usd or 0.0 for c in completions if not c.cached)
