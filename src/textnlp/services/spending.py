"""Per-user spending caps: refuse new work once a user's recorded spend has reached their cap.

The cap is the user's own (``users.spending_cap_usd``) or the settings' default
(``models.user_spending_cap_usd``); None means no cap. Spend is what the user's direct
generations and jobs cost, from the price table (``SpendingStore``). Only priced models are
limited: a model without a price costs nothing, so the embedded model is never refused.

Two places apply it: admission (``check``: the API's text and invoke routes and batch submits
refuse with ``QuotaExceeded``, HTTP 429 without ``Retry-After``) and running jobs (``cap``: the
worker wraps the job's backend in the owner's remaining budget, so a job stops before it passes
the cap, and learns at each checkpoint what the owner's other work spent). Concurrent requests
that pass admission together may overshoot the cap by what they cost; jobs of one user running
at the same time overshoot it by at most a chunk of records each.
"""

from __future__ import annotations

from textnlp.adapters.db.spending import SpendingStore, UserSpend
from textnlp.backends.pricing import PriceTable, SpendingCap
from textnlp.backends.spec import ModelSpec
from textnlp.config import Settings
from textnlp.domain import Completion
from textnlp.errors import QuotaExceeded


class SpendingService:
    def __init__(self, settings: Settings, store: SpendingStore, prices: PriceTable) -> None:
        self.settings = settings
        self.store = store
        self.prices = prices

    def priced(self, spec: ModelSpec) -> bool:
        return self.prices.price(spec) is not None

    def limit(self, spend: UserSpend) -> float | None:
        if spend.cap_usd is not None:
            return spend.cap_usd
        return self.settings.models.user_spending_cap_usd

    def check(self, owner_id: str, spec: ModelSpec) -> None:
        """Refuse (``QuotaExceeded``) when the owner's spend has reached their cap."""
        if not self.priced(spec):
            return
        spend = self.store.spend(owner_id)
        limit = self.limit(spend)
        if limit is not None and spend.spent_usd >= limit:
            raise QuotaExceeded(
                f"spending cap reached: ${spend.spent_usd:.4f} spent of the ${limit:.2f} "
                f"allowed for this user; {spec.id} has a price (models without one still work)",
                limit_usd=limit,
                spent_usd=round(spend.spent_usd, 6),
            )

    def cap(self, owner_id: str, spec: ModelSpec) -> SpendingCap | None:
        """The owner's remaining budget for a job run (None: no cap, or an unpriced model)."""
        if not self.priced(spec):
            return None
        spend = self.store.spend(owner_id)
        limit = self.limit(spend)
        if limit is None:
            return None
        return SpendingCap(limit, spent_usd=spend.spent_usd, name=f"user {owner_id}")

    def spent(self, owner_id: str) -> float:
        """What the owner has spent in all, as recorded (direct generations and jobs)."""
        return self.store.spend(owner_id).spent_usd

    def record(self, owner_id: str, cost_usd: float) -> None:
        """Count what a direct generation cost."""
        if cost_usd > 0:
            self.store.add_direct(owner_id, cost_usd)

    def set_user_cap(self, username: str, cap_usd: float | None) -> str:
        """Set (None: clear) a user's own cap; returns their id."""
        return self.store.set_cap(username, cap_usd)


def cost_of(completions: list[Completion]) -> float:
    """What completions cost now: priced ones, less answers from the cache."""
    return sum(c.usage.cost_usd or 0.0 for c in completions if not c.cached)
