"""The dead-letter sweep: settle the jobs whose messages reached a dead-letter queue by redrive.

A message lands in a dead-letter queue without its job being marked when the worker died on
every receive (SIGKILL, out of memory, a Spot reclaim without notice): nobody was left to say
why. Every ``queue.dead_letter_sweep_s`` a worker reads these messages (each comes back at most
once an hour; the queues keep them) and settles each job still live:

- a generation job whose every record is stored (its workers died after the last chunk, while
  writing or uploading the result) is finished from the store: its result is published and it
  succeeds, or goes to the validation service when it has a gate. Its dead-lettered message is
  deleted: there is nothing left for a person to look at;
- a generation job with attempts left (the receives were not its failures: a held message can
  lapse while the queue itself is unreachable) goes back to its queue;
- any other job is failed with its last error (keeping the records it made as its result),
  and the message stays for a person to look at; the provider batches it left running are
  cancelled (by the worker's loop, ``JobRunner.cancel_batches``: no worker polls them any more).

Messages that are not job messages, and those of finished jobs, are left as they are (a
failed job whose provider batch is still held has it cancelled: the sweep that failed it may
have stopped first).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

from pydantic import ValidationError

from textnlp.adapters.db.jobs import JobRow
from textnlp.adapters.queue import JobQueue, QueueMessage
from textnlp.domain.jobs import TERMINAL_STATES
from textnlp.services.job_models import JobMessage
from textnlp.services.job_runs import JobRuns
from textnlp.worker.runner import JobRunner

log = logging.getLogger(__name__)


def unwrapped_body(message: QueueMessage) -> str:
    """The job message inside a dead-lettered one (SQS's ``dead_letter`` wraps it with the
    reason; a redriven message and the database queue's are the body itself)."""
    try:
        wrapped = json.loads(message.body)
    except ValueError:
        return message.body
    if isinstance(wrapped, dict) and "body" in wrapped:
        return str(wrapped["body"])
    return message.body


class DeadLetterSweep:
    def __init__(self, runs: JobRuns, runner: JobRunner, notify: Callable[[str], None]) -> None:
        self.runs = runs
        self.runner = runner
        self.notify = notify

    def settle(self, queue: JobQueue, message: QueueMessage) -> str | None:
        """Finish, requeue or fail the job of one dead-lettered message of ``queue``; returns
        the id of the job it failed, or of an ended job that still holds a provider batch (its
        caller cancels the batches it left running: ``JobRunner.cancel_batches``), else None."""
        body = unwrapped_body(message)
        try:
            parsed = JobMessage.model_validate_json(body)
        except (ValueError, ValidationError):
            return None  # not a job message: it stays in the DLQ for a person to look at
        runs = self.runs
        row = runs.get(parsed.job_id)
        if row is None:
            return None
        if row.state in TERMINAL_STATES:
            # The sweep that failed it may have stopped before it cancelled the job's batches
            # (the message stays here), or its owner cancelled it while its message lay here
            # (no worker sees it again): while a batch is still held, the caller cancels it
            # (then lets it go, so later sweeps leave the job alone).
            left = row.state in ("failed", "cancelled") and runs.batch_may_run(row.id)
            return row.id if left else None
        if parsed.step == "generate":
            if runs.is_complete(row):
                self._finish(queue, message, row)
                return None
            if row.attempts < queue.max_receives:
                self._requeue(queue, message, row, body)
                return None
        last = row.error or "the worker stopped without a word (crash or out of memory)"
        error = f"dead-lettered after {queue.max_receives} receives; last error: {last}"
        if not runs.finish(row.id, "failed", error=error):
            return None
        self.runner.settle(row.id)
        self.notify(row.id)
        return row.id

    def _finish(self, queue: JobQueue, message: QueueMessage, row: JobRow) -> None:
        log.warning("job %s: every record is stored, finishing it from the store", row.id)
        result_key = self.runner.publish_stored(row.id)
        over = self.runs.finish_generation(row.id, result_key)
        queue.delete(message)
        if over:
            self.notify(row.id)

    def _requeue(self, queue: JobQueue, message: QueueMessage, row: JobRow, body: str) -> None:
        log.warning(
            "job %s: dead-lettered after %d counted attempts of %d; back to %s",
            row.id,
            row.attempts,
            queue.max_receives,
            queue.name,
        )
        # Send first, delete second (a duplicate, never a loss); a fresh deduplication id, or
        # a FIFO queue would drop it as a repeat of the first message.
        queue.send(body, group_id=row.id, dedup_id=uuid.uuid4().hex)
        queue.delete(message)
