"""Estimated cost of completions from a price table, and spending caps.

Prices are US dollars per 1,000 tokens, input and output apart, keyed by catalogue model id or
by the provider's model id (``endpoint``). The table comes from settings
(``ModelsSettings.prices``); a model without an entry has no cost (``None``), which is the
honest answer for self-hosted servers. ``SpendingCap`` stops work *before* a cap would be
exceeded: each request reserves its worst case (prompt + ``max_tokens``) and settles with the
actual cost when it returns; ``CappedBackend`` applies a cap to any backend. A request that does
not fit only because of others in flight waits for them to settle; one that cannot fit even then
raises ``QuotaExceeded``. Caps nest: a job's backend can be wrapped in its job cap and in its
owner's cap.

Batch prices: a provider batch (OpenAI Batch API, Anthropic Message Batches, Bedrock batch
inference) costs ``BATCH_DISCOUNT`` of the online price, as all three list it, unless a price
names its own ``batch_input_per_1k`` / ``batch_output_per_1k``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textnlp.backends.base import Backend, WrappedBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, TokenDelta, Usage
from textnlp.errors import QuotaExceeded

if TYPE_CHECKING:
    from textnlp.config import Settings


#: A provider batch's price as a share of the online price (OpenAI, Anthropic and Bedrock all
#: list batch inference at 50% of on-demand).
BATCH_DISCOUNT = 0.5


def usd(amount: float) -> str:
    """An amount as every cost and cap in a message shows it: ``$0.0001`` (four decimals, so
    that a cap of a hundredth of a cent is not "$0.00" beside the amounts it is compared with)."""
    return f"${amount:.4f}"


@dataclass(frozen=True)
class Price:
    input_per_1k: float
    output_per_1k: float
    #: The provider's batch prices; None: ``BATCH_DISCOUNT`` of the online ones.
    batch_input_per_1k: float | None = None
    batch_output_per_1k: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1k + completion_tokens * self.output_per_1k) / 1000

    def batch(self) -> Price:
        """The price of the same tokens in a provider batch."""
        return Price(
            self.batch_input_per_1k
            if self.batch_input_per_1k is not None
            else self.input_per_1k * BATCH_DISCOUNT,
            self.batch_output_per_1k
            if self.batch_output_per_1k is not None
            else self.output_per_1k * BATCH_DISCOUNT,
        )


class PriceTable:
    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(prices or {})

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceTable:
        """The table of ``models.prices``."""
        return cls(
            {
                key: Price(
                    value.input_per_1k,
                    value.output_per_1k,
                    value.batch_input_per_1k,
                    value.batch_output_per_1k,
                )
                for key, value in settings.models.prices.items()
            }
        )

    def price(self, spec: ModelSpec) -> Price | None:
        for key in (spec.id, spec.endpoint):
            if key and key in self._prices:
                return self._prices[key]
        return None

    def cost(self, spec: ModelSpec, usage: Usage) -> float | None:
        price = self.price(spec)
        if price is None:
            return None
        return round(price.cost(usage.prompt_tokens, usage.completion_tokens), 8)

    def estimate(self, spec: ModelSpec, prompt_tokens: int, max_tokens: int) -> float:
        """The most a request can cost (0 without a price)."""
        price = self.price(spec)
        return price.cost(prompt_tokens, max_tokens) if price else 0.0

    def priced(self, spec: ModelSpec, usage: Usage) -> Usage:
        return usage.model_copy(update={"cost_usd": self.cost(spec, usage)})

    def batch_cost(self, spec: ModelSpec, usage: Usage) -> float | None:
        price = self.price(spec)
        if price is None:
            return None
        return round(price.batch().cost(usage.prompt_tokens, usage.completion_tokens), 8)

    def batch_estimate(self, spec: ModelSpec, prompt_tokens: int, max_tokens: int) -> float:
        """The most a request can cost in a provider batch (0 without a price)."""
        price = self.price(spec)
        return price.batch().cost(prompt_tokens, max_tokens) if price else 0.0

    def batch_priced(self, spec: ModelSpec, usage: Usage) -> Usage:
        return usage.model_copy(update={"cost_usd": self.batch_cost(spec, usage)})


class SpendingCap:
    """A budget in US dollars for one user or one job; safe across threads and tasks."""

    #: Whether ``reserve`` and ``settle`` do I/O (a cap held in a database): called off the
    #: event loop then.
    blocking = False
    #: How long a request waiting for room waits for a settlement before it asks ``could_fit``
    #: again (None: until one comes): a cap shared with other processes hears of none of theirs.
    poll_s: float | None = None

    def __init__(self, limit_usd: float, *, spent_usd: float = 0.0, name: str = "") -> None:
        self.limit_usd = limit_usd
        self.name = name
        self._spent = spent_usd
        self._reserved = 0.0
        self._lock = threading.Lock()
        #: Set whenever a request settles, to wake the requests waiting for room: on the cap,
        #: so that the wrappers of several models under one cap (a recipe's) wake each other.
        self.settled = asyncio.Event()

    @property
    def spent_usd(self) -> float:
        return self._spent

    @property
    def reserved_usd(self) -> float:
        return self._reserved

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.limit_usd - self._spent - self._reserved)

    def _refuse(self, estimated: float) -> QuotaExceeded:
        return QuotaExceeded(
            f"spending cap{f' of {self.name}' if self.name else ''} reached: "
            f"{usd(self._spent)} spent, {usd(self._reserved)} in flight, "
            f"{usd(estimated)} more would exceed {usd(self.limit_usd)}",
            limit_usd=self.limit_usd,
            spent_usd=round(self._spent, 6),
        )

    def _exceeds(self, estimated: float) -> bool:
        # Nothing costs nothing: a model without a price is never refused, even past the cap.
        return estimated > 0 and self._spent + self._reserved + estimated > self.limit_usd

    def check(self, estimated: float) -> None:
        """Raise ``QuotaExceeded`` when ``estimated`` more would pass the cap."""
        with self._lock:
            if self._exceeds(estimated):
                raise self._refuse(estimated)

    def reserve(self, estimated: float, *, lasting: bool = False) -> None:
        """Hold ``estimated`` until ``settle``, or refuse it (``QuotaExceeded``) when it would
        pass the cap. ``lasting``: a provider batch's worst case, which runs on, and is paid,
        whatever becomes of this run (a cap shared with other processes keeps it held)."""
        with self._lock:
            if self._exceeds(estimated):
                raise self._refuse(estimated)
            self._reserved += estimated

    def hold(self, committed: float, *, lasting: bool = False) -> None:
        """Hold ``committed``, spent already whatever the cap says now (a provider batch an
        earlier attempt submitted runs on and is paid), until ``settle``: never refused, it
        leaves the room it takes to nothing else."""
        with self._lock:
            self._reserved += committed

    def settle(self, reserved: float, actual: float | None, *, lasting: bool = False) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved)
            self._spent += actual or 0.0

    def add(self, actual: float | None) -> None:
        self.settle(0.0, actual)

    def observe_spent(self, total_usd: float) -> None:
        """Learn of spending elsewhere: ``total_usd`` is what the cap's owner has spent in all,
        as recorded (it never lowers what this cap has counted itself)."""
        with self._lock:
            self._spent = max(self._spent, total_usd)

    def could_fit(self, estimated: float, waited: int = 0) -> bool:
        """Whether ``estimated`` more fits once the requests in flight have settled (a request
        that has ``waited`` polls already asks; caps that wait on others bound it)."""
        with self._lock:
            return self._reserved > 0 and self._spent + estimated <= self.limit_usd


class PricedBackend(WrappedBackend):
    """Prices a local backend's completions from the table. Remote backends price their own
    (``CloudContext.prices``); a self-hosted model has a price only when its operator sets one
    (its GPU hours as a price per token), and then records, caps and charges count it alike.
    It replaces its inner backend in the pool, so it loads and closes it."""

    def __init__(self, inner: Backend, prices: PriceTable) -> None:
        super().__init__(inner)
        self.name = inner.name  # type: ignore[misc]  # labels and traces name the real backend
        self.prices = prices

    async def load(self) -> None:
        await self.inner.load()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _priced(self, usage: Usage) -> Usage:
        return self.prices.priced(self.spec, usage)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        completions = await self.inner.generate(requests)
        return [c.model_copy(update={"usage": self._priced(c.usage)}) for c in completions]

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        async for delta in self.inner.stream(request):
            if delta.usage is not None:
                delta = delta.model_copy(update={"usage": self._priced(delta.usage)})
            yield delta


class CappedBackend(WrappedBackend):
    """Wraps a loaded backend so that no request starts that could pass ``cap``."""

    name = "capped"

    def __init__(self, inner: Backend, cap: SpendingCap, prices: PriceTable) -> None:
        super().__init__(inner)
        self.cap = cap
        self.prices = prices

    def _estimate(self, request: GenerationRequest) -> float:
        prompt = self.inner.prompt_token_count(request)  # the chat template's tokens too
        return self.prices.estimate(self.spec, prompt, request.params.max_tokens * request.params.n)

    async def _reserve(self, estimated: float) -> None:
        """Reserve ``estimated``, waiting while requests in flight may still leave room."""
        waited = 0
        while True:
            # Cleared before the try: a settle during it (a blocking cap's reserve awaits)
            # leaves the event set, so the wait below cannot miss it.
            self.cap.settled.clear()
            try:
                if self.cap.blocking:
                    await self._reserve_in_thread(estimated)
                else:
                    self.cap.reserve(estimated)
                return
            except QuotaExceeded:
                fits = (
                    await asyncio.to_thread(self.cap.could_fit, estimated, waited)
                    if self.cap.blocking  # it may ask the database
                    else self.cap.could_fit(estimated, waited)
                )
                if not fits:
                    raise
            waited += 1
            if self.cap.poll_s is None:
                await self.cap.settled.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cap.settled.wait(), self.cap.poll_s)

    async def _reserve_in_thread(self, estimated: float) -> None:
        """A blocking cap's reserve. Cancelled meanwhile (a judge's other criteria, a recipe's
        spare candidates), its thread still holds ``estimated`` once it has run: given back
        then, or the hold would outlive the request and stall the job's later ones."""
        reserving = asyncio.ensure_future(asyncio.to_thread(self.cap.reserve, estimated))
        try:
            await asyncio.shield(reserving)
        except asyncio.CancelledError:
            loop = asyncio.get_running_loop()

            def give_back(done: asyncio.Future[None]) -> None:
                if not done.cancelled() and done.exception() is None:
                    given = loop.run_in_executor(None, self.cap.settle, estimated, None)
                    given.add_done_callback(lambda _: self.cap.settled.set())  # wake waiters

            reserving.add_done_callback(give_back)
            raise

    async def _settle(self, reserved: float, actual: float | None) -> None:
        if self.cap.blocking:
            await asyncio.shield(asyncio.to_thread(self.cap.settle, reserved, actual))
        else:
            self.cap.settle(reserved, actual)
        self.cap.settled.set()

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        estimates = [self._estimate(r) for r in requests]
        total = sum(estimates)
        await self._reserve(total)
        try:
            completions = await self.inner.generate(requests)
        except BaseException:
            await self._settle(total, None)
            raise
        await self._settle(total, sum(c.usage.cost_usd or 0.0 for c in completions))
        return completions

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        estimate = self._estimate(request)
        await self._reserve(estimate)
        actual: float | None = None
        try:
            async for delta in self.inner.stream(request):
                if delta.usage is not None:
                    actual = delta.usage.cost_usd
                yield delta
        finally:
            # A stream cut short may have cost something; count the estimate then.
            await self._settle(estimate, actual if actual is not None else estimate)
