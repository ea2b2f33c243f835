"""The worker: receive job messages, run them, acknowledge only stored effects.

Delivery is at least once. A message is deleted after the job's records, its final file and
its terminal state are stored; until then a heartbeat keeps the message invisible. SIGTERM
(ECS stopping a task, Ctrl-C) sets a stop flag: running jobs store their finished records at
the next record to finish (within ``runner.STOP_GRACE_S``, else the records in flight are
cancelled) and hand their message back (a validation step hands it back at once), and the
worker exits. A second signal stops at once: the records in flight are cancelled.
SIGKILL needs no handling: the message reappears after its visibility timeout (30 s by
default) and the job resumes from its stored records.

A job that asks for a validation gate is not finished by the generation worker: its result is
stored and a ``validate`` message goes (through the outbox) to the validation queue, which the
CPU validation service consumes; that worker writes ``validation/results/<job>.json`` and
finishes the job, succeeded or failed by the gate. The job stays ``running`` in between.

Outages (``worker.outages``: the database, the queue, the storage or Redis cannot be reached)
are not failures. The loop logs one line, backs off with jitter and goes on; a job meeting one
keeps its message (the heartbeat goes on extending it) and runs the same step again once the
dependency is back, continuing from its stored records. A stop while waiting hands the message
back with ``JobQueue.hand_back`` and takes the attempt back (``JobStore.uncount_attempt``), as
a plain SIGTERM does: neither moves the job towards its dead-letter queue. The worker also
starts while its database is down, and waits for it.

A message that is not a job message is dead-lettered at once. A job whose attempt fails is
retried until it has used ``max_receives`` attempts, counted on the job (a hand-back gives its
attempt back; SQS cannot lower a receive count, so the count alone would not do); then the job
is marked failed with the reason and the message goes to the dead-letter queue. Jobs whose
messages reached a dead-letter queue by redrive (the worker died every time) are settled by
the dead-letter sweep (``worker.dead_letters``; finished when every record is stored). A job
stopped by a spending cap (``QuotaExceeded``) is not retried: another attempt would meet the
same cap. It is marked failed with the cap's message at once, and its message is deleted. Nor
is one whose input is wrong (``errors.is_permanent``: a template that fails to render, a request
the model refuses): it fails at once with the reason. A job that ends failed or cancelled keeps
the records it made as its (partial) result file, and has the provider batches it left running
cancelled (``JobRunner.cancel_batches``): no worker polls them any more, and they would run on,
paid for nobody.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import ValidationError

from textnlp.adapters.queue import JobQueue, QueueMessage
from textnlp.bootstrap import Platform
from textnlp.domain.jobs import TERMINAL_STATES
from textnlp.errors import QuotaExceeded, first_error, is_permanent, public_reason
from textnlp.observability.gpu import Sampler, mean_utilisation, nvml_sampler
from textnlp.observability.spans import span
from textnlp.services.generation import GenerationService
from textnlp.services.job_models import JobMessage, JobSpec, job_id_of
from textnlp.services.job_runs import JobRuns
from textnlp.worker.checkpoint import Checkpointer, StopJob
from textnlp.worker.dead_letters import DeadLetterSweep
from textnlp.worker.holding import Heartbeat, hand_back, unless_stopped
from textnlp.worker.notify import Notifier
from textnlp.worker.outages import Patience, describe, is_outage
from textnlp.worker.runner import JobRunner

log = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    queues: tuple[str, ...] = ("generation", "batch", "validation")
    #: Jobs run at the same time by this process.
    concurrency: int = 1
    #: Exit when the queues are empty (the batch processor task).
    once: bool = False
    #: Longest wait of one receive.
    wait_s: float = 2.0
    #: How often the GPU's utilisation is published (where a GPU is present).
    gpu_report_s: float = 60.0
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


class Worker:
    """Consumes the queues of ``options`` with the services of ``platform`` (which its caller
    owns and closes)."""

    def __init__(
        self,
        platform: Platform,
        options: WorkerOptions | None = None,
        *,
        gpu_sampler: Sampler | None | bool = True,
    ) -> None:
        """``gpu_sampler``: True finds the GPUs through NVML; None publishes no GPU metric."""
        self.platform = platform
        self.settings = platform.settings
        self.options = options or WorkerOptions()
        self.stop = asyncio.Event()
        #: A second signal: the records in flight are cancelled now, not at the next record.
        self.force = asyncio.Event()
        self.patience = Patience(self.stop)
        self.processed = 0
        self._last_sweep = 0.0
        self._heartbeats: dict[str, Heartbeat] = {}
        self._gpu = nvml_sampler() if gpu_sampler is True else gpu_sampler or None

    # -- the platform's parts: built on first use, so that ``run`` can wait for the database --
    @cached_property
    def runs(self) -> JobRuns:
        return self.platform.job_runs

    @cached_property
    def generation(self) -> GenerationService:
        return self.platform.generation

    @cached_property
    def notifier(self) -> Notifier:
        return self.platform.notifier

    @cached_property
    def runner(self) -> JobRunner:
        return JobRunner(self.runs, self.generation, chunk_size=self.settings.queue.chunk_size)

    @cached_property
    def queues(self) -> list[JobQueue]:
        return [self.platform.queues.role(q) for q in self.options.queues]

    @cached_property
    def dead_letters(self) -> DeadLetterSweep:
        return DeadLetterSweep(self.runs, self.runner, self._notify)

    def _connect(self) -> None:
        """Build every part (a failed one is built again on the next call)."""
        self.runner  # noqa: B018
        self.queues  # noqa: B018
        self.dead_letters  # noqa: B018
        self.notifier  # noqa: B018

    # -- lifecycle --------------------------------------------------------------------------
    def request_stop(self) -> None:
        if not self.stop.is_set():
            log.info(
                "stopping: running jobs store their finished records and hand back their "
                "messages at the next record (signal again to stop at once)"
            )
            self.stop.set()
        elif not self.force.is_set():
            log.info("stopping now: cancelling the records in flight")
            self.force.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    async def run(self) -> int:
        """Consume until stopped (or, with ``once``, until the queues are empty)."""
        running: set[asyncio.Task[None]] = set()
        reporter = asyncio.create_task(self._report_gpu()) if self._gpu is not None else None
        try:
            await self.patience.run("worker start", self._connect)
            await self._consume(running)
        except Exception as exc:
            if not (self.stop.is_set() and is_outage(exc)):
                raise
            log.info("stopped while waiting: %s", describe(exc))  # nothing held is lost
        finally:
            if reporter is not None:
                reporter.cancel()
        return self.processed

    async def _consume(self, running: set[asyncio.Task[None]]) -> None:
        try:
            while not self.stop.is_set():
                if not await self.patience.call("worker loop", lambda: self._poll(running)):
                    break
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _poll(self, running: set[asyncio.Task[None]]) -> bool:
        """One turn of the loop; False when a ``once`` worker has nothing left to do."""
        await asyncio.to_thread(self.platform.jobs.publish_pending)
        await self._sweep_dead_letters()
        free = self.options.concurrency - len(running)
        if free <= 0:
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            return True
        received = await self._receive(free)
        if not received:
            return not (self.options.once and not running)
        for queue, message in received:
            task = asyncio.create_task(self._handle(queue, message))
            running.add(task)
            task.add_done_callback(running.discard)
        return True

    async def _report_gpu(self) -> None:
        """``GPUUtilization`` every ``gpu_report_s``: what the GPU service scales on."""
        assert self._gpu is not None
        metrics = self.platform.metrics
        while True:
            await asyncio.sleep(self.options.gpu_report_s)
            percent = await asyncio.to_thread(mean_utilisation, self._gpu)
            if percent is not None:
                metrics.observe_gpu(percent)

    async def _receive(self, free: int) -> list[tuple[JobQueue, QueueMessage]]:
        wait = self.options.wait_s / max(1, len(self.queues))
        for queue in self.queues:
            messages = await asyncio.to_thread(queue.receive, free, wait)
            if messages:
                return [(queue, m) for m in messages]
        return []

    # -- one message ------------------------------------------------------------------------
    async def _handle(self, queue: JobQueue, message: QueueMessage) -> None:
        interval = min(self.settings.queue.heartbeat_s, queue.visibility_timeout_s / 3)
        self._heartbeats[message.receipt] = Heartbeat(queue, message, interval).start()
        try:
            await self._process(queue, message)
        except Exception:  # a bug here must not kill the loop; the message comes back later
            log.exception("worker error on message %s", message.id)
        finally:
            await self._let_go(message)
            self.processed += 1

    async def _let_go(self, message: QueueMessage) -> None:
        """Stop extending ``message``: before it is released or handed back, and at the end."""
        beat = self._heartbeats.pop(message.receipt, None)
        if beat is not None:
            await beat.stop()

    async def _process(self, queue: JobQueue, message: QueueMessage) -> None:
        try:
            parsed = JobMessage.model_validate_json(message.body)
        except ValidationError as exc:
            reason = f"malformed message: {first_error(exc, root='message')}"
            log.warning("dead-lettering message %s: %s", message.id, reason)
            await self.patience.run("dead-lettering", queue.dead_letter, message, reason)
            job_id = job_id_of(message.body)
            if job_id is not None:  # its job would wait for ever: it fails, with the reason
                fail = functools.partial(self.runs.finish, job_id, "failed", error=reason)
                ended = await self.patience.run("failing its job", fail)
                if ended:
                    await self._ended(job_id, settle=False)
                    await self.patience.run("failing its job", self._notify, job_id)
            return
        # One trace per delivery: the job's SQL, queue, storage and model calls beneath it.
        # It continues the trace of the request that submitted the job, when it was traced.
        with span(
            f"job {parsed.step}",
            kind="consumer",
            parent=message.trace_header,
            job_id=parsed.job_id,
            queue=queue.name,
        ):
            await self._run_step(queue, message, parsed)

    async def _run_step(self, queue: JobQueue, message: QueueMessage, parsed: JobMessage) -> None:
        counted = False  # whether this delivery counted an attempt on the job
        try:
            if parsed.step == "validate":
                await self._validate(queue, message, parsed.job_id)
            else:
                counted = await self._start(queue, message, parsed.job_id)
                if counted:
                    await self._generate(queue, message, parsed.job_id)
        except StopJob:  # shutdown: the finished records are stored
            await self._hand_back(queue, message, parsed.job_id if counted else None)
        except Exception as exc:
            if not is_outage(exc):  # only a stop ends the wait for a dependency
                raise
            await self._hand_back(queue, message, parsed.job_id if counted else None)

    async def _hand_back(self, queue: JobQueue, message: QueueMessage, job_id: str | None) -> None:
        await self._let_go(message)
        await hand_back(queue, message, self.runs, job_id)

    async def _start(self, queue: JobQueue, message: QueueMessage, job_id: str) -> bool:
        """Count an attempt on the job; False when there is nothing to run."""
        what = f"job {job_id}"
        row = await self.patience.run(what, self.runs.start_attempt, job_id, self.options.worker_id)
        if row is None:  # deleted by its owner or a purge (it had ended): nothing to run
            log.info("job %s: no such job (deleted); its message is dropped", job_id)
            await self.patience.run(what, queue.delete, message)
            return False
        if row.state in TERMINAL_STATES:  # a duplicate delivery, or a cancelled job
            again = await self._ended(job_id)
            await self._done_with(queue, message, job_id, batch_runs=again)
            # Cancelled while no worker held it (queued, or waiting for its next attempt): no
            # attempt saw the cancel, so this delivery tells it (a duplicate's claim fails).
            await self.patience.run(what, self._notify, job_id)
            return False
        log.info("job %s: attempt %d (receive %d)", job_id, row.attempts, message.receive_count)
        return True

    async def _generate(self, queue: JobQueue, message: QueueMessage, job_id: str) -> None:
        what = f"job {job_id}"
        chunk = self.settings.queue.chunk_size
        try:
            # Each try after an outage starts again from the stored records, in this delivery.
            result_key = await self.patience.call(
                what,
                lambda: self.runner.run(
                    job_id, Checkpointer(self.runs, job_id, chunk, self.stop, self.force)
                ),
            )
        except StopJob as stop:
            if stop.reason != "cancelled":
                raise
            # Its batches were asked to cancel: what they answered before is counted once
            # they are seen to end (now, or at a later delivery of the message).
            again = await self._ended(job_id)
            await self._done_with(queue, message, job_id, batch_runs=again)
            await self.patience.run(what, self._notify, job_id)
            return
        except QuotaExceeded as exc:
            log.warning("job %s: stopped by a spending cap: %s", job_id, exc.message)
            await self.patience.run(what, self.runs.fail_capped, job_id, exc)
            again = await self._ended(job_id)
            await self._done_with(queue, message, job_id, batch_runs=again)
            await self.patience.run(what, self._notify, job_id)
            return
        except Exception as exc:
            if is_outage(exc):
                raise
            await self._attempt_failed(queue, message, job_id, exc, final=is_permanent(exc))
            return
        over = await self.patience.run(what, self.runs.finish_generation, job_id, result_key)
        await self.patience.run(what, queue.delete, message)  # only now: the effects are stored
        if over:
            await self.patience.run(what, self._notify, job_id)

    async def _validate(self, queue: JobQueue, message: QueueMessage, job_id: str) -> None:
        """The validation service's step: the gate on the stored result, then the job's end."""
        what = f"job {job_id} validation"
        row = await self.patience.run(what, self.runs.get, job_id)
        if row is None:  # deleted by its owner or a purge (it had ended): nothing to check
            log.info("job %s: no such job (deleted); its validation message is dropped", job_id)
            await self.patience.run(what, queue.delete, message)
            return
        if row.state not in TERMINAL_STATES and not row.result_key:
            reason = f"no result of job {job_id}"
            await self.patience.run(what, queue.dead_letter, message, reason)
            return
        if row.state in TERMINAL_STATES:  # a duplicate delivery, or a cancelled job
            await self.patience.run(what, queue.delete, message)
            await self.patience.run(what, self._notify, job_id)  # cancelled while it waited
            return
        spec = JobSpec.model_validate(row.spec)
        result_key = row.result_key
        assert result_key is not None
        validation = self.patience.run(
            what, self.runner.validate, job_id, spec, result_key, row.total
        )
        try:
            outcome = await unless_stopped(validation, self.stop)
        except Exception as exc:
            if is_outage(exc):
                raise
            final = is_permanent(exc)
            await self._attempt_failed(queue, message, job_id, exc, on_job=False, final=final)
            return
        if outcome is None:  # no checkpoint inside a validation: hand it back now
            raise StopJob("shutdown")
        report_key, failure = outcome
        finished = await self.patience.run(
            what,
            lambda: self.runs.finish(
                job_id,
                "failed" if failure else "succeeded",
                error=failure,
                report_key=report_key,
            ),
        )
        if not finished and await self.patience.run(what, self.runs.get, job_id) is None:
            # Cancelled and deleted while it was checked: its report would name no job.
            await self.patience.run(what, self.runs.discard_result, report_key)
        # Let go of it: a gate's failure keeps the whole dataset, no settle is to redo it.
        await self.patience.run(what, self.runs.worker_stopped, job_id)
        await self.patience.run(what, queue.delete, message)
        await self.patience.run(what, self._notify, job_id)

    async def _attempt_failed(
        self,
        queue: JobQueue,
        message: QueueMessage,
        job_id: str,
        exc: Exception,
        *,
        on_job: bool = True,
        final: bool = False,
    ) -> None:
        """``on_job``: the attempts are counted on the job (generation), else on the message
        alone (a validation step). ``final``: another attempt would meet the same error (the
        job's input is wrong): the job fails now and its message is deleted, not
        dead-lettered (the dead-letter queue and its alarm are for the operators' failures)."""
        # The whole text for the log and the dead-letter queue (operators); the job's error,
        # which its owner and their webhook read, says no more than ``public_reason``.
        detail = f"{type(exc).__name__}: {exc}"
        reason = public_reason(exc)
        log.warning(
            "job %s: attempt failed: %s", job_id, detail, exc_info=exc if reason != detail else None
        )
        runs = self.runs
        what = f"job {job_id}"
        await self.patience.run(what, runs.note_error, job_id, reason)
        attempts = message.receive_count
        if on_job:
            # The job's own count: a handed-back SQS message is a fresh copy, received once.
            row = await self.patience.run(what, runs.get, job_id)
            attempts = max(attempts, row.attempts if row is not None else 0)
        if final:
            await self.patience.run(what, lambda: runs.finish(job_id, "failed", error=reason))
            again = await self._ended(job_id)
            await self._done_with(queue, message, job_id, batch_runs=again)
            await self.patience.run(what, self._notify, job_id)
            return
        if attempts < queue.max_receives:
            await self._let_go(message)
            await self.patience.run(what, queue.release, message, self._retry_delay(attempts))
            return
        error = f"failed after {attempts} attempts: {reason}"
        await self.patience.run(what, lambda: runs.finish(job_id, "failed", error=error))
        await self._ended(job_id)
        await self.patience.run(what, queue.dead_letter, message, detail)
        await self.patience.run(what, self._notify, job_id)

    async def _ended(self, job_id: str, *, settle: bool = True) -> bool:
        """The job ended (cancelled, or failed for good): the provider batches it left running
        are cancelled (no worker polls them any more: they would run on, paid for nobody),
        then, with ``settle``, it keeps the records it made (``JobRunner.settle``). True when
        a batch may still run (``JobRunner.cancel_batches``: to be visited again)."""
        what = f"job {job_id}"
        again = await self.patience.call(what, lambda: self.runner.cancel_batches(job_id))
        if settle:
            await self.patience.run(what, self.runner.settle, job_id)
        return again

    async def _done_with(
        self, queue: JobQueue, message: QueueMessage, job_id: str, *, batch_runs: bool
    ) -> None:
        """The ended job's message is done: deleted, unless a provider batch of the job may
        still run (its cancel failed, or it is still cancelling: ``JobRunner.cancel_batches``),
        when it comes back after the retry delay to ask again and count what the batch was
        paid. Its receives count: after ``max_receives`` it reaches the dead-letter queue,
        whose sweep visits it while the batch is held, at most for its time at the provider."""
        what = f"job {job_id}"
        if not batch_runs:
            await self.patience.run(what, queue.delete, message)
            return
        delay = self._retry_delay(message.receive_count)
        log.info("job %s: a provider batch may still run; visited again in %d s", job_id, delay)
        await self._let_go(message)
        await self.patience.run(what, queue.release, message, delay)

    def _retry_delay(self, attempts: int) -> int:
        """Seconds before attempt ``attempts + 1``: none for a worker that exits when the
        queues are empty (it would leave the job waiting for another one)."""
        if self.options.once:
            return 0
        q = self.settings.queue
        return min(q.retry_delay_s << max(0, attempts - 1), q.retry_delay_max_s)

    async def _sweep_dead_letters(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.settings.queue.dead_letter_sweep_s:
            return
        self._last_sweep = now
        for queue in self.queues:
            try:
                messages = await asyncio.to_thread(queue.dead_letters, 10)
            except Exception as exc:
                if is_outage(exc):
                    raise  # the loop waits for the queue, then sweeps at the next interval
                log.warning("cannot read the dead-letter queue of %s", queue.name, exc_info=True)
                continue
            for message in messages:
                try:
                    failed = await asyncio.to_thread(self.dead_letters.settle, queue, message)
                    if failed is not None:
                        await self._ended(failed, settle=False)  # settled by the sweep
                except Exception as exc:
                    if is_outage(exc):
                        raise  # the loop waits for the dependency, then sweeps again
                    # One message this release cannot settle (a bug, a job it cannot read)
                    # must not stop the worker's loop, nor the messages behind it.
                    log.exception("cannot settle dead-lettered message %s", message.id)

    def _notify(self, job_id: str) -> None:
        """Send the notice of the job's end, once: the worker that claims it sends it. What
        can meet an outage (reading the job, its view) comes before the claim, so that the
        step is tried again after it; nothing after the claim raises."""
        row = self.runs.get(job_id)
        if row is None:
            return
        webhook = row.spec.get("webhook_url")
        if not webhook and not self.notifier.topic_arn:
            return
        view = self.runs.view(row)
        if not self.runs.claim_notice(job_id):
            return

        def exists() -> bool:  # asked before each attempt: a deleted job is not told of
            try:
                return self.runs.get(job_id) is not None
            except Exception:  # an outage: told rather than lost (the claim is spent)
                log.warning("job %s: cannot tell whether it was deleted", job_id, exc_info=True)
                return True

        secret = row.spec.get("webhook_secret")
        self.notifier.notify(view, webhook, secret=secret, exists=exists)
