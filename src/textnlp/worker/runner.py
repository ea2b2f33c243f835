"""One job, start to finish: resume from the stored records, generate the missing ones in
checkpointed chunks, write the final file from the store, upload it, validate, notify. A job
whose records are all stored already (its worker died after the last chunk) is only published.

Why the records live in the database rather than in a local journal: workers on different
machines (ECS tasks, spot capacity) take over each other's jobs; a local file dies with its
task, a row keyed by (job id, index) does not, and ``ON CONFLICT DO NOTHING`` makes a second
writer of the same record harmless. The store is the pipeline's record sink (the
``Checkpointer``): every attempt resumes from the stored records, so the pipeline itself skips
the finished indices, and the final file is written once, from the store.

Spending caps: the model runs under the job's cap (seeded with the cost of the records already
stored, so a resumed job continues with what it had left) and under its owner's cap, whose
reservations are held in the database beside the owner's other work (``HeldSpendingCap``), in
the run's own hold: renewed at each heartbeat while the run goes on (a worker that dies stops
renewing it, and it stops counting when its lease runs out) and released when the run ends.
A cap that would be passed stops the pipeline: the records in flight finish, the last chunk
is stored, and the ``QuotaExceeded`` reaches the consumer, which fails the job.

Shutdown (SIGTERM): the run ends at the next record to finish, with every finished record
stored (``Checkpointer``); a run in which none finishes within ``STOP_GRACE_S``, or a second
signal, is cancelled at once, its finished records stored all the same. Either way the records
still in flight are dropped (a resumed job makes them again) and ``StopJob`` hands the message
back: a task stopping is not killed before it has let go of its job.

A ``provider_batch`` job gets its first answers from the provider's batch API before the
pipeline runs (``worker.provider_batch``); the records are made and stored as above.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any

from textnlp.adapters.db.jobs import JobRow
from textnlp.backends.base import Backend, ScopedBackend
from textnlp.errors import TextNLPError
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.writers import write_dataset
from textnlp.services.generation import GenerationService
from textnlp.services.job_models import JobSpec
from textnlp.services.job_runs import KEEP_TRIES, JobRuns, kept_whole
from textnlp.worker.checkpoint import Checkpointer, StopJob, unwrap
from textnlp.worker.outages import is_outage
from textnlp.worker.provider_batch import ProviderBatches

log = logging.getLogger(__name__)

#: How long a stopping job waits for its next record before it cancels the records in flight.
STOP_GRACE_S = 5.0


class JobRunner:
    def __init__(
        self,
        runs: JobRuns,
        generation: GenerationService,
        *,
        chunk_size: int,
        provider_batches: ProviderBatches | None = None,
    ) -> None:
        self.runs = runs
        self.generation = generation
        self.chunk_size = chunk_size
        #: The provider batch step of ``provider_batch`` jobs (``worker.provider_batch``).
        self.provider_batches = provider_batches or ProviderBatches(runs, generation.settings)

    async def run(self, job_id: str, checkpointer: Checkpointer) -> str:
        """Generate and store the job's result; returns its result key.

        Raises ``StopJob`` when cancelled or shut down at a checkpoint, anything else when the
        attempt failed.
        """
        runs = self.runs
        row = runs.get(job_id)
        if row is None:  # cancelled and deleted since its attempt started
            raise StopJob("cancelled")
        spec = JobSpec.model_validate(row.spec)
        source = runs.template(spec)
        # A recipe's job is done when ``total`` records passed (its rejects are stored too).
        accepted_only = isinstance(source, Recipe)
        if runs.is_complete(row):
            # Every record is stored (a worker died after the last chunk): no model needed.
            return await asyncio.to_thread(self.publish_stored, job_id)
        settings = self.generation.settings
        request = self._request(row, spec, source)
        hold_id = await asyncio.to_thread(runs.open_hold, job_id)
        checkpointer.hold_id = hold_id  # a store moves its records' cost out of the hold
        renewing = asyncio.create_task(self._keep_held(job_id, hold_id))
        try:
            budget = runs.budget(row, hold_id)
            pool = self.generation.pool
            model = await self.generation.run_backend(spec.model or settings.default_model, source)
            # The owner's answers only: a job must not be answered from another user's records.
            cache = self.generation.cache_of(row.owner_id)
            backend: Backend
            if spec.provider_batch:
                # First answers from the provider's batch API (paid: outside the caps); the rest
                # online under them, without the cache. (A hosted model: no engine of ours keeps
                # prompts to scope.)
                batches = self.provider_batches
                backend = await batches.answers(job_id, request, model, budget, checkpointer)
                cache = None
            else:
                # The engine reuses only the owner's cached prompts (no timing oracle across users).
                backend = budget.apply(ScopedBackend(model, row.owner_id))

            async def backend_of(model_id: str) -> Backend:  # a recipe column's own model
                return budget.apply(ScopedBackend(await pool.get(model_id), row.owner_id))

            pipeline = DatasetPipeline(
                backend,
                cache,
                spec_of=self.generation.catalogue.get,
                backend_of=backend_of,
            )
            try:
                await until_stopped(pipeline.run(request, sink=checkpointer), checkpointer)
            except BaseExceptionGroup as group:  # the pipeline's TaskGroup wraps errors
                raise unwrap(group) from None
            stored = runs.stored_count(job_id, ok_only=accepted_only)
            if stored != row.total:
                # Not the input's fault (a lost write?): another attempt resumes from the store.
                raise TextNLPError(f"job {job_id} has {stored} of {row.total} records stored")
            return await asyncio.to_thread(self.publish_stored, job_id)
        finally:
            # The run is over: nothing it holds against its owner's cap is in flight any more.
            renewing.cancel()
            await asyncio.to_thread(self._release_hold, job_id, hold_id)

    def _request(self, row: JobRow, spec: JobSpec, source: Any) -> DatasetRequest:
        """The dataset the job asks for (as each of its runs makes it)."""
        settings = self.generation.settings
        return DatasetRequest(
            template=source,
            count=row.total,
            params=spec.params.given(),
            variables=dict(spec.variables),
            seed=spec.seed,
            concurrency=settings.generation.concurrency,
            resume=True,
            json_retries=settings.generation.json_retries,
            max_candidates=spec.max_candidates,
        )

    async def _keep_held(self, job_id: str, hold_id: str) -> None:
        """Renew the run's hold at each heartbeat while the run goes on (cancelled at its end).
        A renewal that fails is tried again at the next beat: the lease outlasts several."""
        while True:
            await asyncio.sleep(self.runs.hold_renewal_s)
            try:
                await asyncio.to_thread(self.runs.renew_hold, hold_id)
            except Exception as exc:
                log.warning("job %s: could not renew its spending hold: %s", job_id, exc)

    def _release_hold(self, job_id: str, hold_id: str) -> None:
        # A provider batch handed back running stays held (``SpendingStore.release_hold``).
        try:
            self.runs.release_hold(hold_id)
        except Exception as exc:  # it stops counting when its lease runs out
            log.warning("job %s: its spending hold stays until its lease ends: %s", job_id, exc)

    def publish_stored(self, job_id: str, *, partial: bool = False) -> str:
        """The final file from the store (every index once, in order), uploaded in parts;
        returns its key (a ``partial`` one's own, see ``JobRuns.upload_result``)."""
        row = self.runs.get(job_id)
        assert row is not None
        fmt = JobSpec.model_validate(row.spec).format
        workdir = Path(tempfile.mkdtemp(prefix=f"textnlp-publish-{job_id[:8]}-"))
        try:
            final = workdir / f"final.{fmt}"
            write_dataset(final, self.runs.stored_records(job_id))
            return self.runs.upload_result(job_id, fmt, final, partial=partial)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def cancel_batches(self, job_id: str) -> bool:
        """A ``provider_batch`` job that ended (cancelled, or failed for good) with its
        batches not seen to end: those still running are cancelled now, and those seen to end
        have what their answers cost counted in the job's cost (the provider bills the
        requests a batch answered before its cancel); once none runs, what the job held of
        them is let go (``ProviderBatches.cancel_left_running``).

        True when one may still run (its cancel or poll failed: a 5xx, a timeout, throttling;
        or it is still cancelling): the caller comes back to it later (the job's message is
        released, not deleted; a dead-lettered one is swept again), and it stays held
        meanwhile, at most for its time at the provider (``JobStore.batch_may_run``), so this
        never goes on for ever. Best effort past an outage (which the caller waits out): a
        batch that cannot be cancelled (a model gone from the catalogue, a spec of another
        release) stays held for as long as the provider may run it."""
        row = self.runs.get(job_id)
        ended = row is not None and row.state in ("cancelled", "failed")
        if row is None or not ended or not row.spec.get("provider_batch"):
            return False
        try:
            spec = JobSpec.model_validate(row.spec)  # another release's it may not read
            model_id = spec.model or self.generation.settings.default_model
            source = self.runs.template(spec)
            model = await self.generation.run_backend(model_id, source)
            request = self._request(row, spec, source)
            left = await self.provider_batches.cancel_left_running(job_id, model, request)
        except Exception as exc:
            if is_outage(exc):
                raise
            log.warning("job %s: its provider batches could not be cancelled: %s", job_id, exc)
            return False
        return left is not None and left.running

    def settle(self, job_id: str) -> None:
        """An ended job's last step: a cancelled or failed job (a spending cap, a wrong input,
        its last attempt) keeps the records it made as its (partial) result file, as an OpenAI
        batch does, and its worker lets it go (its page then knows that nothing more will
        come).

        Any worker may settle: the one that stopped, or one given a duplicate delivery while
        the first still stores its last chunk. The file is made again whenever a record was
        stored after it (every store beats the job's heartbeat, which keeping a file clears),
        and kept only if none was stored while it was made: the last to settle keeps them all.

        Best effort past an outage (which the caller waits out): a file that cannot be written
        (a full disk) leaves the job without one, as before, rather than its message coming
        back for ever to a job that has ended."""
        for _ in range(KEEP_TRIES):
            row = self.runs.get(job_id)
            if row is None or not self._has_more_to_keep(row):
                self.runs.worker_stopped(job_id)
                return
            try:
                key = self.publish_stored(job_id, partial=True)
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.warning("job %s: its records could not be kept as a file: %s", job_id, exc)
                self.runs.worker_stopped(job_id)
                return
            if self.runs.keep_partial_result(job_id, key, beat=row.heartbeat_at):
                return
            self.runs.discard_result(key)  # a record was stored meanwhile: read them again
        log.warning("job %s: records kept coming; the last worker to stop keeps them", job_id)

    def _has_more_to_keep(self, row: JobRow) -> bool:
        """A cancelled or failed job with records, stored after its kept file or none kept."""
        if row.state not in {"cancelled", "failed"}:
            return False
        return not kept_whole(row) and self.runs.stored_count(row.id, ok_only=True) > 0

    def validate(
        self, job_id: str, spec: JobSpec, result_key: str, requested: int | None = None
    ) -> tuple[str, str | None]:
        """Run the validation gate on the result; returns (report key, failure or None).
        ``requested``: the job's records (its failed ones are not in the result)."""
        from textnlp.validation import validate_dataset

        workdir = Path(tempfile.mkdtemp(prefix="textnlp-validate-"))
        try:
            local = workdir / f"records.{spec.format}"
            self.runs.download_result(result_key, local)
            report = validate_dataset(
                local,
                gate=spec.validation,
                embeddings=False,
                templates=self.generation.templates,  # a user template's schema too
                requested=requested,
            )
            key = self.runs.upload_report(job_id, report.model_dump_json(indent=2))
            failed = [r.rule for r in report.gate.rules if r.status == "fail"]
            return key, ("validation gate failed: " + ", ".join(failed)) if failed else None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


async def until_stopped(run: Coroutine[Any, Any, Any], checkpointer: Checkpointer) -> None:
    """Await ``run`` (a pipeline into ``checkpointer``), cut short by a shutdown: after
    ``checkpointer.stop`` it has ``STOP_GRACE_S`` to end (its next record does, see
    ``Checkpointer.append``), and none after ``checkpointer.force``; then it is cancelled, and
    the pipeline stores its finished records as it ends (``RecordSink.end``).

    Raises ``StopJob("shutdown")`` for a cancelled run, or the run's own error."""
    if checkpointer.stop.is_set():  # stopped before a record was started
        run.close()
        raise StopJob("shutdown")
    task = asyncio.ensure_future(run)
    try:
        await _first(task, checkpointer.stop.wait())
        if not task.done():
            await _first(task, checkpointer.force.wait(), timeout=STOP_GRACE_S)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.wait({task})
    if task.cancelled():
        raise StopJob("shutdown")
    task.result()  # its error, if any (a StopJob at a record, a failure)


async def _first(
    task: asyncio.Future[Any], other: Awaitable[Any], timeout: float | None = None
) -> None:
    """Until ``task`` is done, ``other`` is, or ``timeout`` passed."""
    waiter = asyncio.ensure_future(other)
    try:
        await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


__all__ = ["JobRunner", "StopJob"]
