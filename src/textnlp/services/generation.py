"""Generation use cases: datasets from templates and recipes, and single completions.

A dataset run may carry a spending cap (``DatasetJob.max_cost_usd``): the loaded backend is
wrapped in the run's ``Budget`` (``services.spending``) for that run only; the pool's backend
stays shared and uncapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textnlp.backends.base import Backend, ScopedBackend, UnloadedBackend
from textnlp.backends.registry import ModelCatalogue
from textnlp.backends.spec import ModelSpec
from textnlp.config import Settings
from textnlp.domain import Completion, GenerationRequest, ModelInfo, Record, TokenDelta
from textnlp.errors import CandidatesExhausted, InvalidParameter
from textnlp.generation.cache import CachedBackend, OwnerScopedCache, ResponseCache
from textnlp.generation.card import DatasetCard, models_of, write_card
from textnlp.generation.pipeline import (
    DatasetPipeline,
    DatasetRequest,
    DatasetSummary,
    OnRecord,
    file_sink,
)
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.sinks import MemorySink
from textnlp.generation.templates import PromptTemplate, TemplateLibrary
from textnlp.generation.writers import format_of, iter_dataset
from textnlp.observability.spans import span
from textnlp.services.models import ModelPool
from textnlp.services.spending import Reservation, SpendingService

log = logging.getLogger(__name__)
#: Tries to settle a reservation (0.5 s, then 1 s apart: a failover's short outage).
SETTLE_TRIES = 3


@dataclass
class DatasetJob:
    """A dataset to generate, as a user names it: ids (or, from the library, a recipe)."""

    template: str | Recipe
    count: int
    output: Path | None
    model: str | None = None
    params: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None
    seed: int = 0
    concurrency: int | None = None
    resume: bool = False
    #: Spending cap of this run in US dollars (None: no cap); see ``SpendingService.run_budget``.
    max_cost_usd: float | None = None
    #: A recipe run's most candidates (None: the pipeline's default per record asked).
    max_candidates: int | None = None
    #: A file for a recipe run's rejected and failed candidates.
    rejects: Path | None = None


def check_count(count: int, settings: Settings) -> None:
    """A run's count within the deployment's bound (``generation.max_count``)."""
    limit = settings.generation.max_count
    if count > limit:
        raise InvalidParameter(
            f"count {count} is above the maximum of {limit} (TEXTNLP_GENERATION__MAX_COUNT)"
        )


class GenerationService:
    """Everything generation needs, built from settings once per process."""

    def __init__(
        self,
        settings: Settings,
        catalogue: ModelCatalogue,
        templates: TemplateLibrary,
        pool: ModelPool,
        cache: ResponseCache | None,
        spending: SpendingService,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.templates = templates
        self.pool = pool
        self.cache = cache
        self.spending = spending

    def cache_of(self, owner: str | None) -> ResponseCache | None:
        """The response cache as ``owner`` (a user id) sees it: only the answers that owner was
        given (a hit on another's would tell them what was asked, and give it free). None: the
        whole cache, a CLI run's."""
        if self.cache is None or owner is None:
            return self.cache
        return OwnerScopedCache(self.cache, owner)

    def clear_cache(self) -> int:
        """Empty the response cache (the admin's action, from the API or the console): how
        many entries went; 0 when caching is off."""
        return self.cache.clear() if self.cache is not None else 0

    def dataset_request(self, job: DatasetJob) -> tuple[str, DatasetRequest]:
        """Resolve names to objects and check everything that can be checked before loading."""
        check_count(job.count, self.settings)
        model_id = job.model or self.settings.default_model
        spec = self.catalogue.get(model_id)  # unknown model -> ModelNotFound, before loading
        self.spending.run_budget(job.max_cost_usd)  # a negative cap is refused here
        template = (
            self.templates.source(job.template, paths=True)
            if isinstance(job.template, str)
            else job.template
        )
        request = DatasetRequest(
            template=template,
            count=job.count,
            output=job.output,
            params=dict(job.params or {}),
            variables=dict(job.variables or {}),
            seed=job.seed,
            concurrency=job.concurrency or self.settings.generation.concurrency,
            resume=job.resume,
            json_retries=self.settings.generation.json_retries,
            max_candidates=job.max_candidates,
            rejects=job.rejects,
        )
        # Cheap checks (count, path, parameters, variables, a recipe whole) before any model
        # loads.
        DatasetPipeline.precheck(spec, request, self.catalogue.get)
        return model_id, request

    async def generate_dataset(
        self, job: DatasetJob, on_record: OnRecord | None = None
    ) -> DatasetSummary:
        model_id, request = self.dataset_request(job)
        # The output's lock before a model loads: a second run on the output is refused at once.
        with file_sink(request) as sink:
            budget = self.spending.run_budget(job.max_cost_usd)
            backend = budget.apply(await self.run_backend(model_id, request.template))

            async def backend_of(other: str) -> Backend:  # a recipe column's own model
                return budget.apply(await self.pool.get(other))

            def card(summary: DatasetSummary) -> None:
                # With the records only: a run that wrote none (every candidate rejected, a
                # stopped run over an earlier dataset) leaves the output, card and all, as it was.
                if sink.wrote:
                    self.write_card(job, summary)

            pipeline = DatasetPipeline(
                backend, self.cache, spec_of=self.catalogue.get, backend_of=backend_of
            )
            return await pipeline.run(request, on_record, sink=sink, on_end=card)

    def write_card(
        self, job: DatasetJob, summary: DatasetSummary, gate: dict[str, Any] | None = None
    ) -> None:
        """An HF dataset directory's card: what made it, and its release gate once validated
        (other outputs have no card)."""
        output = job.output
        if output is None or format_of(output) != "hf":
            return
        source = (
            self.templates.source(job.template, paths=True)
            if isinstance(job.template, str)
            else job.template
        )
        acceptance = summary.acceptance or {}
        write_card(
            output,
            DatasetCard(
                id=source.id,
                version=source.version,
                kind="recipe" if isinstance(source, Recipe) else "template",
                description=source.description,
                models=models_of(iter_dataset(output)),
                requested=summary.requested,
                written=summary.written,
                candidates=acceptance.get("candidates"),
                rejected=dict(acceptance.get("rejected", {})),
                failed=summary.failed,
                acceptance_rate=acceptance.get("acceptance_rate"),
                gate=gate,
                seed=job.seed,
                export=source.export if isinstance(source, Recipe) else None,
            ),
        )

    async def preview(self, job: DatasetJob, owner: str | None = None) -> list[Record]:
        """A few records of ``job`` (its ``count``), none written: every candidate made,
        the rejected and failed ones too, each with its reason. ``job.output`` is ignored.

        With an ``owner`` (a server's user: the console) the response cache is that owner's
        alone, the owner's spending cap is checked for every model the run calls before it
        starts, and what the records cost is counted after (a preview is a few records, so it
        may pass the cap by what they cost)."""
        job = replace(job, max_candidates=None, resume=False, rejects=None, output=None)
        model_id, request = self.dataset_request(job)
        if isinstance(request.template, Recipe):  # as many candidates as records shown
            request = replace(request, max_candidates=job.count)
        cache = self.cache_of(owner)
        if owner is not None:
            source = request.template
            models = (
                set(source.llm_models(model_id).values())
                if isinstance(source, Recipe)
                else {model_id}
            )
            for other in sorted(models):
                await asyncio.to_thread(self.spending.check, owner, self.catalogue.get(other))
        backend = await self.run_backend(model_id, request.template)

        def scoped(model: Backend) -> Backend:
            return model if owner is None else ScopedBackend(model, owner)

        async def backend_of(other: str) -> Backend:
            return scoped(await self.pool.get(other))

        pipeline = DatasetPipeline(
            scoped(backend), cache, spec_of=self.catalogue.get, backend_of=backend_of
        )
        sink = MemorySink()
        try:
            with contextlib.suppress(CandidatesExhausted):  # rejected candidates are the point
                await pipeline.run(request, sink=sink)
        finally:
            cost = sum(r.provenance.cost_usd or 0.0 for r in sink.records)
            if owner is not None and cost > 0:
                await asyncio.to_thread(self.spending.record, owner, cost)
        return sink.records

    async def run_backend(self, model_id: str, template: PromptTemplate | Recipe) -> Backend:
        """The run's model, loaded only when the run calls it: a recipe whose columns are
        samplers and expressions, or call models of their own, loads none of it (2.4 GB and
        seconds for the embedded one) and needs no credentials for it."""
        if isinstance(template, Recipe) and model_id not in template.llm_models(model_id).values():
            return UnloadedBackend(self.catalogue.get(model_id))
        return await self.pool.get(model_id)

    async def admit(self, owner: str, model_id: str, requests: Sequence[GenerationRequest]) -> None:
        """Refuse (``QuotaExceeded``) direct requests of ``owner`` once their spending cap is
        reached, or when the requests' worst case (``worst_usd``) would pass it. A check only:
        the requests reserve their worst case when they run (``reserve``)."""
        spec = self.spec(model_id)
        if not self.spending.priced(spec):
            return
        worst = await self.worst_usd(model_id, requests)
        await asyncio.to_thread(self.spending.check, owner, spec, worst)

    async def reserve(
        self, owner: str, model_id: str, requests: Sequence[GenerationRequest]
    ) -> Reservation:
        """Reserve the requests' worst case from ``owner``'s spending cap before they run
        (``QuotaExceeded`` when it does not fit), for ``settle``."""
        spec = self.spec(model_id)
        worst = await self.worst_usd(model_id, requests)
        if not self.spending.priced(spec):  # no database, no thread
            return Reservation(owner, 0.0, 0.0)
        loop = asyncio.get_running_loop()
        made = loop.run_in_executor(None, self.spending.reserve, owner, spec, worst)
        try:
            return await asyncio.shield(made)
        except asyncio.CancelledError:
            # Cancelled while the reservation was being made (a client gone): nothing ran,
            # so it is released as soon as it is made.
            def release(done: asyncio.Future[Reservation]) -> None:
                if not done.cancelled() and done.exception() is None:
                    loop.run_in_executor(None, self.spending.settle, done.result(), 0.0)

            made.add_done_callback(release)
            raise

    async def settle(self, reservation: Reservation, cost_usd: float) -> None:
        """Count what reserved requests cost instead of their reservation. It runs to its end
        even when the caller is cancelled (a client gone): a reservation is never left held
        while the database answers. It is tried again through a short outage; past that the
        worst case stays counted (an overcharge, logged for an operator, never an overshoot)
        and the answer still goes out: the work is done."""
        if reservation.held_usd == cost_usd == 0:
            return
        # Its own task, shielded: a cancellation of the caller cannot stop it half way.
        await asyncio.shield(asyncio.ensure_future(self._settle(reservation, cost_usd)))

    async def _settle(self, reservation: Reservation, cost_usd: float) -> None:
        for attempt in range(SETTLE_TRIES):
            try:
                await asyncio.to_thread(self.spending.settle, reservation, cost_usd)
                return
            except Exception as exc:
                if attempt == SETTLE_TRIES - 1:
                    log.error(
                        "could not settle a request of user %s: $%.6f stays counted for its "
                        "$%.6f (%s)",
                        reservation.owner_id,
                        reservation.held_usd,
                        cost_usd,
                        exc,
                    )
                    return
                await asyncio.sleep(0.5 * 2**attempt)

    async def worst_usd(self, model_id: str, requests: Sequence[GenerationRequest]) -> float:
        """The most ``requests`` can cost: the prompt as the model reads it (its chat template
        included) and ``max_tokens`` each (0 without a price)."""
        spec = self.spec(model_id)
        if not self.spending.priced(spec):
            return 0.0
        backend = await self.pool.get(model_id)
        return sum(
            self.spending.prices.estimate(
                spec, backend.prompt_token_count(r), r.params.max_tokens * r.params.n
            )
            for r in requests
        )

    async def meter(self, model_id: str, request: GenerationRequest) -> Callable[[str, int], float]:
        """What a stream cut short before its usage cost, as a function of the text and the
        number of deltas it produced: its prompt, as ``worst_usd`` counts it, and the tokens
        of that text (at least one a delta). Made before the stream, so that it is at hand
        without awaiting anything when the stream is cancelled."""
        spec = self.spec(model_id)
        price = self.spending.prices.price(spec)
        if price is None:
            return lambda text, deltas: 0.0
        backend = await self.pool.get(model_id)
        prompt = backend.prompt_token_count(request)

        def cost(text: str, deltas: int) -> float:
            completion = max(deltas, backend.count_tokens(text) if text else 0)
            return price.cost(prompt, completion)

        return cost

    # -- models ------------------------------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        """Every catalogue model, with whether it can serve here now (circuits included)."""
        return self.pool.describe_all()

    def spec(self, model_id: str | None) -> ModelSpec:
        """The catalogue entry of ``model_id`` (None: the default model); ``ModelNotFound``."""
        return self.catalogue.get(model_id or self.settings.default_model)

    def model(self, model_id: str) -> ModelInfo:
        return self.pool.describe(model_id)

    def loaded_models(self) -> list[str]:
        return self.pool.loaded()

    async def load(self, model_id: str) -> None:
        """Load the model now (a load error is raised here, not in the middle of a stream)."""
        await self.pool.get(model_id)

    async def complete(
        self, model_id: str, request: GenerationRequest, owner: str | None = None
    ) -> Completion:
        """One completion; with an ``owner`` (an API caller's user id) the response cache
        answers only what that owner asked before, and the engine reuses only that owner's
        cached prompts (no cross-user oracle, by answer or by timing)."""
        backend = await self.pool.get(model_id)
        cache = self.cache_of(owner)
        if owner is not None:
            backend = ScopedBackend(backend, owner)
        with span(f"model {model_id}", kind="client", **_model_attributes(backend, model_id)):
            if cache is not None:
                backend = CachedBackend(backend, cache)
            return await backend.generate_one(request)

    async def stream(
        self, model_id: str, request: GenerationRequest, owner: str | None = None
    ) -> AsyncIterator[TokenDelta]:
        """Token deltas; with an ``owner``, the engine reuses only that owner's prompts."""
        # No span around a stream: a span made current inside an async generator cannot be
        # detached safely when the client goes away mid-stream (the generator closes elsewhere).
        backend = await self.pool.get(model_id)
        if owner is not None:
            backend = ScopedBackend(backend, owner)
        async for delta in backend.stream(request):
            yield delta


def _model_attributes(backend: Backend, model_id: str) -> dict[str, str]:
    return {"textnlp.model": model_id, "textnlp.backend": backend.name}
