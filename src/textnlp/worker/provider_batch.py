"""A job's requests through its provider's batch API (``JobSpec.provider_batch``).

The job's records are still made by the dataset pipeline into the job store, chunk by chunk,
each index exactly once: what changes is where the first answer of each record comes from.
Before the pipeline runs, ``ProviderBatches.answers``

1. builds the first request of every record not stored yet, exactly as the pipeline will ask
   for it (the template's prompt for record ``i``, its seed from the job's seed and ``i``);
2. splits them within the provider's limits and submits each part as one provider batch,
   writing a manifest (``generated/batch-jobs/<job>/provider/manifest.json``) after each
   submit, so that a worker taking the job over re-attaches to the batches already running
   instead of paying for them twice, and holds again the worst case of the parts that have not
   ended in the job's caps (each part's estimate is in the manifest): the attempt that held
   it first is over, and the batch runs on (held apart from the run's own hold, ``lasting``,
   so that it stays held whatever becomes of the run, until then). The manifest records that
   a part is being submitted (``submitting``, with the time) before the submit too: a worker
   that died between the provider's acceptance and the manifest leaves a part ``submitting``
   without a batch id, and the next worker asks the provider for the batch of that job and
   part (``BatchProvider.find``: the submit tagged it) before it submits the part again;
3. polls them with backoff (the job stays ``running``; each poll is a heartbeat, so a user's
   cancel is seen and cancels the provider batches, and a shutdown hands the job back with the
   batches still running for the next worker; a job cancelled meanwhile has them cancelled by
   its next delivery, and one that fails for good by its end, ``cancel_left_running``). A
   cancelled batch is still paid for the requests it answered before the cancel (each provider
   says so: OpenAI's ``cancelled`` batch keeps them in its output file, Anthropic's ended
   batch has them ``succeeded`` beside the ``canceled`` ones, Bedrock's ``Stopped`` job bills
   the tokens it processed and writes what it did): its worst case stays held until it is seen
   to end, and then what its answers cost is counted in the job's cost (``JobRunner.
   cancel_batches``). A cancel or a poll that fails (a 5xx, a timeout, throttling) leaves the
   batch held and running, and the job's message comes back to try again (a later delivery or
   the dead-letter sweep), for at most the batch's time at the provider;
4. reads their results, priced at the provider's batch price, and counts them in the job's
   caps (the batch's worst case was held there from its submit until then).

The pipeline then runs on a ``PrefilledBackend``: a request the batch answered is answered
from there (once), any other goes to the model online. So a record the batch errored, or left
unprocessed because it expired or was cancelled, is generated online; an answer that fails the
template's JSON schema is retried online by the pipeline's own JSON retries; and a resumed job
skips the stored indices as always. A batch that failed as a whole (the provider refused its
input) fails the attempt with the provider's reason. The response cache is not used: a cached
answer would leave a paid batch answer unused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from pydantic import BaseModel

from textnlp.backends.aws_common import without_account_ids
from textnlp.backends.base import Backend, WrappedBackend
from textnlp.backends.batch import BatchFiles, BatchProvider, batch_provider
from textnlp.backends.batch.base import (
    BatchError,
    BatchLine,
    estimate_tokens,
    public_batch_error,
)
from textnlp.backends.pricing import SpendingCap
from textnlp.config import Settings
from textnlp.domain import Completion, GenerationParams, GenerationRequest
from textnlp.errors import DatasetError, InvalidParameter
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.templates import PromptTemplate, record_seed
from textnlp.services.job_runs import JobRuns
from textnlp.services.spending import Budget
from textnlp.worker.checkpoint import Checkpointer, StopJob
from textnlp.worker.outages import is_outage

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"

ProviderFactory = Callable[[Backend, BatchFiles], BatchProvider]


@dataclass(frozen=True)
class Polling:
    """Seconds between polls: ``first_s``, growing by ``factor`` up to ``max_s``."""

    first_s: float = 10.0
    max_s: float = 300.0
    factor: float = 1.5


class BatchPart(BaseModel):
    part: int
    indices: list[int]
    batch_id: str | None = None
    #: ``new``, ``submitting`` (a submit began at ``submit_started``; its batch id is not known
    #: yet), ``submitted``, then the provider's own status; ``skipped`` when nothing was left.
    status: str = "new"
    submit_started: float | None = None
    ended: bool = False
    failed: bool = False
    error: str | None = None
    counts: dict[str, int] = {}
    #: The part's worst case at the batch price, held in the job's caps while it runs (None:
    #: a manifest written before it was recorded).
    estimate_usd: float | None = None
    #: What its answers cost, counted in the job's cost as it was seen to end after a cancel
    #: (None: not counted that way).
    paid_usd: float | None = None


@dataclass(frozen=True)
class LeftRunning:
    """What ``cancel_left_running`` saw: whether a batch of the job may still run (its cancel
    or poll failed, or it is still cancelling: asked again later), and what the answers of the
    batches seen to end now were paid."""

    running: bool
    paid_usd: float


class BatchManifest(BaseModel):
    """What a job submitted to its provider (read again by a worker that takes it over)."""

    provider: str
    model: str
    parts: list[BatchPart]


def request_key(request: GenerationRequest) -> str:
    return request.model_dump_json()


def first_requests(
    request: DatasetRequest, params: GenerationParams, indices: Sequence[int]
) -> dict[int, GenerationRequest]:
    """Record ``i``'s first request as ``DatasetPipeline._record`` makes it (attempt 1)."""
    template = request.template
    assert isinstance(template, PromptTemplate)
    requests = {}
    for index in indices:
        variables = template.sample_variables(request.seed, index, request.variables)
        seed = record_seed(request.seed, index) % 2**32
        requests[index] = template.request(variables, params.model_copy(update={"seed": seed}))
    return requests


class PrefilledBackend(WrappedBackend):
    """``inner`` with the provider batch's answers: a request that has one gets it (each answer
    once), any other goes to ``inner`` online. ``inner`` is the model under the job's caps: the
    answers were paid for (and counted) as the batch ended, so no cap refuses them."""

    name = "provider-batch"

    def __init__(self, inner: Backend, answers: dict[str, list[Completion]]) -> None:
        super().__init__(inner)
        self._answers = answers
        self.from_batch = 0
        self.online = 0

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        answers: list[Completion | None] = []
        for request in requests:
            queue = self._answers.get(request_key(request))
            answers.append(queue.pop(0) if queue else None)
        online = [r for r, a in zip(requests, answers, strict=True) if a is None]
        self.from_batch += len(requests) - len(online)
        if online:
            self.online += len(online)
            made = iter(await self.inner.generate(online))
            answers = [a if a is not None else next(made) for a in answers]
        return [a for a in answers if a is not None]


class ProviderBatches:
    """Runs the provider batch step of a job (``answers``)."""

    def __init__(
        self,
        runs: JobRuns,
        settings: Settings,
        *,
        polling: Polling | None = None,
        provider_factory: ProviderFactory | None = None,
    ) -> None:
        self.runs = runs
        self.settings = settings
        self.polling = polling or Polling()
        self.provider_factory = provider_factory or self.default_provider

    def default_provider(self, backend: Backend, files: BatchFiles) -> BatchProvider:
        return batch_provider(
            backend, files, bedrock_role_arn=self.settings.models.bedrock_batch_role_arn
        )

    async def answers(
        self,
        job_id: str,
        request: DatasetRequest,
        backend: Backend,
        budget: Budget,
        checkpointer: Checkpointer,
    ) -> PrefilledBackend:
        """Submit (or re-attach to) the job's provider batches, wait for them and return the
        backend the pipeline runs on."""
        if not isinstance(request.template, PromptTemplate):
            raise InvalidParameter("provider_batch applies to template and prompt jobs only")
        params = DatasetPipeline.resolve(backend.spec, request)
        stored = self.runs.stored_indices(job_id)
        todo = [i for i in range(request.count) if i not in stored]
        if not todo:  # no part of a batch runs on for it: an earlier run's hold of it ends
            await asyncio.to_thread(
                _in_every_cap, budget, 0.0, lambda cap: cap.hold(0.0, lasting=True)
            )
            return PrefilledBackend(budget.apply(backend), {})
        requests = first_requests(request, params, todo)
        files = self.runs.provider_files(job_id)
        provider = self.provider_factory(backend, files)
        held = 0.0  # the worst case of the batch submitted now, held in the caps while it runs
        parts: list[BatchPart] = []  # the batch's, once its manifest is read
        try:
            manifest, held = await asyncio.to_thread(
                self._manifest, files, provider, requests, budget
            )
            parts = manifest.parts
            await self._submit(job_id, provider, files, manifest, requests)
            await self._wait(job_id, provider, files, manifest, checkpointer)
            answers = await self._collect(job_id, provider, manifest, requests)
            # Paid for already: counted in the caps now, never refused by them (only the
            # requests that go online are).
            paid = sum(c.usage.cost_usd or 0.0 for found in answers.values() for c in found)
            for cap in budget.caps:
                await asyncio.to_thread(cap.add, paid)
            return PrefilledBackend(budget.apply(backend), answers)
        except BaseException:
            # Handed back (a stop, an outage), failed or cancelled with the batch running on:
            # it stays held (``lasting``) until the job's next run takes it over, or until the
            # job's end sees it end and counts what it answered (``cancel_left_running``: a
            # cancelled batch is paid for the answers it made before the cancel), for as long
            # as the provider may run it. A batch that failed (every part ended, one failed)
            # runs on no more, and made nothing to pay: it holds nothing.
            failed = bool(parts) and all(p.ended for p in parts) and any(p.failed for p in parts)
            if not failed:
                held = 0.0
            raise
        finally:
            for cap in budget.caps if held else ():
                await asyncio.to_thread(partial(cap.settle, held, 0.0, lasting=True))
            await provider.aclose()

    async def cancel_left_running(
        self, job_id: str, backend: Backend, request: DatasetRequest
    ) -> LeftRunning | None:
        """Cancel the provider batches a job left running as it ended with no worker polling
        them (cancelled, by its worker or while handed back, or failed for good: its last
        attempt, a spending cap, the dead-letter sweep), and count what those seen to end were
        paid (``request``: the job's, whose first requests the batches answered). None when
        no batch of the job was left running.

        Each part not seen to end (``cancelling`` included: a cancel was asked for, but its end
        was never seen) is polled; one still running is cancelled (again: a cancel of a batch
        that is ending or has ended changes nothing at any provider) and polled once more.
        One seen to end has its answers read and priced (``paid_usd``): the provider bills
        those it made before the cancel. A cancel, poll or read that fails leaves the part as
        it was, to be tried again by the job's next visit (``JobRunner.cancel_batches``)."""
        files = self.runs.provider_files(job_id)
        raw = await asyncio.to_thread(files.find, MANIFEST)
        if raw is None:
            return None
        manifest = BatchManifest.model_validate_json(raw)
        left = [p for p in manifest.parts if p.batch_id is not None and not p.ended]
        if not left:
            return None
        params = DatasetPipeline.resolve(backend.spec, request)
        requests = first_requests(request, params, [i for p in left for i in p.indices])
        provider = self.provider_factory(backend, files)
        paid = 0.0
        try:
            for part in left:
                paid += await self._end_part(job_id, provider, part, requests)
        finally:
            await provider.aclose()
        running = any(not p.ended for p in left)
        # Counted before the manifest says so: a worker that stops in between counts them
        # again at the next visit (an overcharge), never not at all.
        await asyncio.to_thread(
            partial(self.runs.count_batch_cost, job_id, paid, ended=not running)
        )
        await self._save(files, manifest)
        return LeftRunning(running=running, paid_usd=paid)

    async def _end_part(
        self,
        job_id: str,
        provider: BatchProvider,
        part: BatchPart,
        requests: dict[int, GenerationRequest],
    ) -> float:
        """Cancel ``part`` unless it has ended; once it has, what its answers cost."""
        assert part.batch_id is not None
        try:
            state = await provider.poll(part.batch_id)
            if not state.ended:
                log.info("job %s: cancelling %s batch %s", job_id, provider.name, part.batch_id)
                await provider.cancel(part.batch_id)
                part.status = "cancelling"
                state = await provider.poll(part.batch_id)
            paid = 0.0
            if state.ended and not state.failed:  # a failed batch made nothing to pay for
                mine = {i: requests[i] for i in part.indices if i in requests}
                found = await provider.results(part.batch_id, mine, job_id=job_id, part=part.part)
                answers = [a for a in found.values() if isinstance(a, Completion)]
                paid = sum(a.usage.cost_usd or 0.0 for a in answers)
        except Exception as exc:
            if is_outage(exc):
                raise  # the platform's own (its storage): waited out by the caller
            # The provider's (a 5xx, a timeout, throttling, a refusal): the next visit asks
            # again; the batch stays held meanwhile, at most for its time at the provider.
            log.warning(
                "job %s: %s batch %s could not be cancelled or read now: %s",
                job_id,
                provider.name,
                part.batch_id,
                exc,
            )
            return 0.0
        part.status, part.counts = state.status, state.counts
        part.ended, part.failed, part.error = state.ended, state.failed, state.error
        if not part.ended:
            return 0.0
        part.paid_usd = paid
        log.info(
            "job %s: %s batch %s ended %s after its cancel; its answers cost $%.6f",
            job_id,
            provider.name,
            part.batch_id,
            state.status,
            paid,
        )
        return paid

    # -- the steps --------------------------------------------------------------------------
    def _manifest(
        self,
        files: BatchFiles,
        provider: BatchProvider,
        requests: dict[int, GenerationRequest],
        budget: Budget,
    ) -> tuple[BatchManifest, float]:
        """The job's manifest, and the worst case held in the budget's caps (0: none).

        A manifest read again (an earlier attempt's worker stopped or died, and that attempt's
        holdings were released) holds its parts that have not ended again: they are submitted,
        or are to be, and paid whatever the caps say now, so they are held without a check."""
        raw = files.find(MANIFEST)
        if raw is not None:
            manifest = BatchManifest.model_validate_json(raw)
            return manifest, self._hold_again(provider, manifest, requests, budget)
        parts = provider.split(provider.lines(requests))
        estimates = [self._estimate(provider, part) for part in parts]
        held = self._hold(sum(estimates), budget)
        try:
            manifest = BatchManifest(
                provider=provider.name,
                model=provider.spec.id,
                parts=[
                    BatchPart(part=n, indices=[x.index for x in p], estimate_usd=e)
                    for n, (p, e) in enumerate(zip(parts, estimates, strict=True))
                ],
            )
            files.put(MANIFEST, manifest.model_dump_json().encode())
        except BaseException:
            for cap in budget.caps:
                cap.settle(held, 0.0, lasting=True)
            raise
        return manifest, held

    @staticmethod
    def _estimate(provider: BatchProvider, lines: Sequence[BatchLine]) -> float:
        """The most ``lines`` can cost in a provider batch."""
        return sum(
            provider.prices.batch_estimate(
                provider.spec,
                estimate_tokens(line.request.as_text()),
                line.request.params.max_tokens * line.request.params.n,
            )
            for line in lines
        )

    @staticmethod
    def _hold(estimate: float, budget: Budget) -> float:
        """Reserve the batch's worst case at the batch price in every cap, before anything is
        paid for (``QuotaExceeded`` when it would pass one); returns it. Held while the batch
        runs, so that the owner's other work does not spend the room it may need."""
        return _in_every_cap(budget, estimate, lambda cap: cap.reserve(estimate, lasting=True))

    def _hold_again(
        self,
        provider: BatchProvider,
        manifest: BatchManifest,
        requests: dict[int, GenerationRequest],
        budget: Budget,
    ) -> float:
        """Hold the worst case of the manifest's parts that have not ended in every cap (an
        older manifest's part without its estimate: that of its records not stored yet)."""
        estimate = 0.0
        for part in manifest.parts:
            if part.ended:
                continue  # its answers are counted as they are collected
            if part.estimate_usd is None:
                mine = {i: requests[i] for i in part.indices if i in requests}
                estimate += self._estimate(provider, provider.lines(mine)) if mine else 0.0
            else:
                estimate += part.estimate_usd
        # Held by this run from now on (none of it, when every part has ended): an earlier
        # run held it until now (``SpendingStore.hold`` takes it over).
        estimate = max(estimate, 0.0)
        return _in_every_cap(budget, estimate, lambda cap: cap.hold(estimate, lasting=True))

    async def _save(self, files: BatchFiles, manifest: BatchManifest) -> None:
        await asyncio.to_thread(files.put, MANIFEST, manifest.model_dump_json().encode())

    async def _submit(
        self,
        job_id: str,
        provider: BatchProvider,
        files: BatchFiles,
        manifest: BatchManifest,
        requests: dict[int, GenerationRequest],
    ) -> None:
        for part in manifest.parts:
            if part.batch_id is not None:
                continue
            lines = provider.lines({i: requests[i] for i in part.indices if i in requests})
            if not lines:  # every record of the part was stored meanwhile
                part.ended, part.status = True, "skipped"
                continue
            if part.status == "submitting" and part.submit_started is not None:
                # A worker died during this part's submit: the provider may hold its batch.
                part.batch_id = await provider.find(job_id, part.part, lines, part.submit_started)
                if part.batch_id is not None:
                    log.info(
                        "job %s: re-attached to %s batch %s of part %d (submitted by a worker "
                        "that stopped before recording it)",
                        job_id,
                        provider.name,
                        part.batch_id,
                        part.part,
                    )
            if part.batch_id is None:
                part.status, part.submit_started = "submitting", time.time()
                await self._save(files, manifest)
                part.batch_id = await provider.submit(job_id, part.part, lines)
                log.info(
                    "job %s: %s batch %s (%d requests)",
                    job_id,
                    provider.name,
                    part.batch_id,
                    len(lines),
                )
            part.status = "submitted"
            await self._save(files, manifest)

    async def _wait(
        self,
        job_id: str,
        provider: BatchProvider,
        files: BatchFiles,
        manifest: BatchManifest,
        checkpointer: Checkpointer,
    ) -> None:
        delay = self.polling.first_s
        while True:
            changed = False
            for part in manifest.parts:
                if part.ended or part.batch_id is None:
                    continue
                state = await provider.poll(part.batch_id)
                if (state.status, state.counts) != (part.status, part.counts):
                    changed = True
                    log.info(
                        "job %s: batch %s is %s %s",
                        job_id,
                        part.batch_id,
                        state.status,
                        state.counts,
                    )
                part.status, part.counts = state.status, state.counts
                part.ended, part.failed, part.error = state.ended, state.failed, state.error
            job_state = await asyncio.to_thread(self.runs.heartbeat, job_id)
            if job_state is None:
                # Deleted: a poll's wait outlasts the heartbeat that a delete takes for a live
                # worker's. Its batches are cancelled (no more to pay for) and its manifest is
                # not saved again (its files are gone and stay gone).
                await self._cancel(job_id, provider, files, manifest, save=False)
                raise StopJob("cancelled")
            if changed:
                await self._save(files, manifest)
            if all(p.ended for p in manifest.parts):
                return
            if job_state == "cancelled":
                await self._cancel(job_id, provider, files, manifest)
                raise StopJob("cancelled")
            if checkpointer.stop.is_set():
                raise StopJob("shutdown")  # the batches run on; the next worker re-attaches
            with contextlib.suppress(TimeoutError):  # a shutdown ends the wait early
                await asyncio.wait_for(checkpointer.stop.wait(), timeout=delay)
            delay = min(self.polling.max_s, delay * self.polling.factor)

    async def _cancel(
        self,
        job_id: str,
        provider: BatchProvider,
        files: BatchFiles,
        manifest: BatchManifest,
        *,
        save: bool = True,
    ) -> None:
        for part in manifest.parts:
            if part.batch_id is not None and not part.ended:
                log.info(
                    "job %s cancelled: cancelling %s batch %s", job_id, provider.name, part.batch_id
                )
                try:
                    await provider.cancel(part.batch_id)
                except Exception as exc:
                    if is_outage(exc):
                        raise
                    # The provider's (a 5xx, a timeout): the job's end asks again
                    # (``cancel_left_running``); the job is cancelled all the same.
                    log.warning(
                        "job %s: cancelling batch %s failed: %s", job_id, part.batch_id, exc
                    )
                    continue
                part.status = "cancelling"
        if save:
            await self._save(files, manifest)

    async def _collect(
        self,
        job_id: str,
        provider: BatchProvider,
        manifest: BatchManifest,
        requests: dict[int, GenerationRequest],
    ) -> dict[str, list[Completion]]:
        failed = [p for p in manifest.parts if p.failed]
        if failed:
            reasons = "; ".join(f"{p.batch_id}: {p.error or p.status}" for p in failed)
            log.error("job %s: the %s batch failed: %s", job_id, provider.name, reasons)
            # The owner reads the reason without the platform's buckets, keys and roles, and a
            # Bedrock job id is an ARN: no account ids either.
            public = "; ".join(
                f"{p.batch_id}: {public_batch_error(p.error) if p.error else p.status}"
                for p in failed
            )
            raise DatasetError(f"{provider.name} batch failed: {without_account_ids(public)}")
        answers: dict[str, list[Completion]] = {}
        errors = 0
        for part in manifest.parts:
            if part.batch_id is None or part.status == "skipped":
                continue
            mine = {i: requests[i] for i in part.indices if i in requests}
            found = await provider.results(part.batch_id, mine, job_id=job_id, part=part.part)
            for index, answer in found.items():
                if isinstance(answer, BatchError):
                    errors += 1
                    log.info(
                        "job %s: record %d errored in the batch (%s: %s); retried online",
                        job_id,
                        index,
                        answer.code,
                        answer.message,
                    )
                    continue
                answers.setdefault(request_key(mine[index]), []).append(answer)
        answered = sum(len(v) for v in answers.values())
        missing = len(requests) - answered - errors
        log.info(
            "job %s: %d records answered by the %s batch, %d errored, %d not processed "
            "(the last two generated online)",
            job_id,
            answered,
            provider.name,
            errors,
            missing,
        )
        return answers


def _in_every_cap(budget: Budget, estimate: float, take: Callable[[SpendingCap], None]) -> float:
    """``take`` a batch's worst case ``estimate`` in every cap of ``budget``, or in none: what
    the caps before a refusal took is given back. Returns ``estimate``."""
    held: list[SpendingCap] = []
    try:
        for cap in budget.caps:
            take(cap)
            held.append(cap)
    except BaseException:
        for cap in held:
            cap.settle(estimate, 0.0, lasting=True)
        raise
    return estimate
