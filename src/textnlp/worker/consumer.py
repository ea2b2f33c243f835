"""The worker: receive job messages, run them, acknowledge only stored effects.

Delivery is at least once. A message is deleted after the job's records, its final file and
its terminal state are stored; until then a heartbeat keeps the message invisible. SIGTERM
(ECS stopping a task, Ctrl-C) sets a stop flag: running jobs store their current chunk and
hand their message back, and the worker exits. SIGKILL needs no handling: the message
reappears after its visibility timeout and the job resumes from its stored records.

A job that asks for a validation gate is not finished by the generation worker: its result is
stored and a ``validate`` message goes (through the outbox) to the validation queue, which the
CPU validation service consumes; that worker writes ``validation/results/<job>.json`` and
finishes the job, succeeded or failed by the gate. The job stays ``running`` in between.

A message that is not a job message is dead-lettered at once. A job whose attempt fails is
retried until its message has been received ``max_receives`` times; then the job is marked
failed with the reason and the message goes to the dead-letter queue. Jobs whose messages
reached the dead-letter queue by redrive (the worker died every time) are marked failed by
the dead-letter sweep (every ``queue.dead_letter_sweep_s``). A job stopped by a spending cap
(``QuotaExceeded``) is not retried: another attempt would meet the same cap. It is marked failed
with the cap's message at once, its stored records stay, and its message is deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field

from pydantic import ValidationError

from textnlp.adapters.db.jobs import TERMINAL_STATES
from textnlp.adapters.queue import JobQueue, QueueMessage
from textnlp.bootstrap import Platform
from textnlp.errors import QuotaExceeded
from textnlp.observability.gpu import Sampler, mean_utilisation, nvml_sampler
from textnlp.services.job_models import JobMessage, JobSpec
from textnlp.worker.checkpoint import Checkpointer, StopJob
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
        self.jobs = platform.jobs
        self.generation = platform.generation
        self.notifier = platform.notifier
        self.options = options or WorkerOptions()
        self.runner = JobRunner(
            self.jobs, self.generation, chunk_size=self.settings.queue.chunk_size
        )
        self.queues: list[JobQueue] = [self.jobs.queues.role(q) for q in self.options.queues]
        self.stop = asyncio.Event()
        self.processed = 0
        self._last_sweep = 0.0
        self._gpu = nvml_sampler() if gpu_sampler is True else gpu_sampler or None

    def request_stop(self) -> None:
        if not self.stop.is_set():
            log.info("stopping: running jobs hand back their messages at the next checkpoint")
        self.stop.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    async def run(self) -> int:
        """Consume until stopped (or, with ``once``, until the queues are empty)."""
        running: set[asyncio.Task[None]] = set()
        reporter = asyncio.create_task(self._report_gpu()) if self._gpu is not None else None
        try:
            await self._consume(running)
        finally:
            if reporter is not None:
                reporter.cancel()
        return self.processed

    async def _consume(self, running: set[asyncio.Task[None]]) -> None:
        while not self.stop.is_set():
            await asyncio.to_thread(self.jobs.publish_pending)
            await self._sweep_dead_letters()
            free = self.options.concurrency - len(running)
            if free <= 0:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            received = await self._receive(free)
            if not received:
                if self.options.once and not running:
                    break
                continue
            for queue, message in received:
                task = asyncio.create_task(self._handle(queue, message))
                running.add(task)
                task.add_done_callback(running.discard)
        if running:
            await asyncio.gather(*running, return_exceptions=True)

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

    async def _handle(self, queue: JobQueue, message: QueueMessage) -> None:
        try:
            await self._process(queue, message)
        except Exception:  # a bug here must not kill the loop; the message comes back later
            log.exception("worker error on message %s", message.id)
        finally:
            self.processed += 1

    async def _process(self, queue: JobQueue, message: QueueMessage) -> None:
        try:
            parsed = JobMessage.model_validate_json(message.body)
        except ValidationError as exc:
            reason = f"malformed message: {exc.errors()[0]['msg']}"
            log.warning("dead-lettering message %s: %s", message.id, reason)
            await asyncio.to_thread(queue.dead_letter, message, reason)
            return
        if parsed.step == "validate":
            await self._validate(queue, message, parsed.job_id)
        else:
            await self._generate(queue, message, parsed.job_id)

    async def _generate(self, queue: JobQueue, message: QueueMessage, job_id: str) -> None:
        store = self.jobs.store
        row = await asyncio.to_thread(store.start, job_id, self.options.worker_id)
        if row is None:
            await asyncio.to_thread(queue.dead_letter, message, f"no job {job_id}")
            return
        if row.state in TERMINAL_STATES:  # a duplicate delivery, or a cancelled job
            await asyncio.to_thread(queue.delete, message)
            return
        log.info("job %s: attempt %d (receive %d)", job_id, row.attempts, message.receive_count)
        checkpointer = Checkpointer(store, job_id, self.settings.queue.chunk_size, self.stop)
        heartbeat = asyncio.create_task(self._heartbeat(queue, message))
        try:
            result_key = await self.runner.run(job_id, self.stop, checkpointer)
        except StopJob as stop:
            if stop.reason == "cancelled":
                await asyncio.to_thread(queue.delete, message)
                await asyncio.to_thread(self._notify, job_id)
            else:  # shutdown: the chunk is stored, the next worker continues
                await asyncio.to_thread(queue.release, message)
            return
        except QuotaExceeded as exc:
            await asyncio.to_thread(self._capped, job_id, exc)
            await asyncio.to_thread(queue.delete, message)
            await asyncio.to_thread(self._notify, job_id)
            return
        except Exception as exc:
            await self._attempt_failed(queue, message, job_id, f"{type(exc).__name__}: {exc}")
            return
        finally:
            heartbeat.cancel()
        finished = await asyncio.to_thread(self._generated, job_id, result_key)
        await asyncio.to_thread(queue.delete, message)  # only now: the effects are stored
        if finished:
            await asyncio.to_thread(self._notify, job_id)

    def _generated(self, job_id: str, result_key: str) -> bool:
        """Finish the job, or hand it to the validation service; True when it finished."""
        row = self.jobs.store.get(job_id)
        assert row is not None
        if JobSpec.model_validate(row.spec).validation is None:
            self.jobs.store.finish(job_id, "succeeded", result_key=result_key)
            return True
        validation = self.jobs.queues.validation
        body = JobMessage(job_id=job_id, step="validate").model_dump_json()
        if self.jobs.store.hand_over(job_id, result_key, validation.name, body):
            self.jobs.publish_pending(job_id=job_id)
        return False

    async def _validate(self, queue: JobQueue, message: QueueMessage, job_id: str) -> None:
        """The validation service's step: the gate on the stored result, then the job's end."""
        row = await asyncio.to_thread(self.jobs.store.get, job_id)
        if row is None or (row.state not in TERMINAL_STATES and not row.result_key):
            await asyncio.to_thread(queue.dead_letter, message, f"no result of job {job_id}")
            return
        if row.state in TERMINAL_STATES:  # a duplicate delivery, or a cancelled job
            await asyncio.to_thread(queue.delete, message)
            return
        spec = JobSpec.model_validate(row.spec)
        result_key = row.result_key
        assert result_key is not None
        heartbeat = asyncio.create_task(self._heartbeat(queue, message))
        try:
            report_key, failure = await asyncio.to_thread(
                self.runner.validate, job_id, spec, result_key
            )
        except Exception as exc:
            await self._attempt_failed(queue, message, job_id, f"{type(exc).__name__}: {exc}")
            return
        finally:
            heartbeat.cancel()
        await asyncio.to_thread(
            self.jobs.store.finish,
            job_id,
            "failed" if failure else "succeeded",
            error=failure,
            report_key=report_key,
        )
        await asyncio.to_thread(queue.delete, message)
        await asyncio.to_thread(self._notify, job_id)

    def _capped(self, job_id: str, exc: QuotaExceeded) -> None:
        row = self.jobs.store.get(job_id)
        total = row.total if row is not None else "?"
        stored = self.jobs.store.count_records(job_id)
        error = f"{exc.message}; {stored} of {total} records kept"
        log.warning("job %s: stopped by a spending cap: %s", job_id, exc.message)
        self.jobs.store.finish(job_id, "failed", error=error)

    async def _attempt_failed(
        self, queue: JobQueue, message: QueueMessage, job_id: str, reason: str
    ) -> None:
        log.warning("job %s: attempt failed: %s", job_id, reason)
        store = self.jobs.store
        await asyncio.to_thread(store.note_error, job_id, reason)
        if message.receive_count < queue.max_receives:
            await asyncio.to_thread(queue.release, message)
            return
        error = f"failed after {message.receive_count} attempts: {reason}"
        await asyncio.to_thread(store.finish, job_id, "failed", error=error)
        await asyncio.to_thread(queue.dead_letter, message, reason)
        await asyncio.to_thread(self._notify, job_id)

    async def _heartbeat(self, queue: JobQueue, message: QueueMessage) -> None:
        """Keep the message invisible while the job runs."""
        interval = min(self.settings.queue.heartbeat_s, queue.visibility_timeout_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(queue.extend, message, queue.visibility_timeout_s)
            except Exception:
                log.warning("could not extend message %s", message.id, exc_info=True)

    async def _sweep_dead_letters(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.settings.queue.dead_letter_sweep_s:
            return
        self._last_sweep = now
        for queue in self.queues:
            try:
                messages = await asyncio.to_thread(queue.dead_letters, 10)
            except Exception:
                log.warning("cannot read the dead-letter queue of %s", queue.name, exc_info=True)
                continue
            for message in messages:
                await asyncio.to_thread(self._fail_dead_lettered, queue, message)

    def _fail_dead_lettered(self, queue: JobQueue, message: QueueMessage) -> None:
        body = message.body
        try:
            wrapped = json.loads(body)
            if isinstance(wrapped, dict) and "body" in wrapped:
                body = str(wrapped["body"])
            job_id = JobMessage.model_validate_json(body).job_id
        except (ValueError, ValidationError):
            return  # not a job message: it stays in the DLQ for a person to look at
        row = self.jobs.store.get(job_id)
        if row is None or row.state in TERMINAL_STATES:
            return
        last = row.error or "the worker stopped without a word (crash or out of memory)"
        error = f"dead-lettered after {queue.max_receives} receives; last error: {last}"
        if self.jobs.store.finish(job_id, "failed", error=error):
            self._notify(job_id)

    def _notify(self, job_id: str) -> None:
        row = self.jobs.store.get(job_id)
        if row is None:
            return
        webhook = row.spec.get("webhook_url")
        if webhook or self.notifier.topic_arn:
            self.notifier.notify(self.jobs.view(row), webhook)
