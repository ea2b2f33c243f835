"""The queue interface the jobs service and the worker share.

Semantics are SQS's, which the database queue copies: at-least-once delivery; a received
message is invisible for the visibility timeout, then reappears unless deleted; every receive
counts, and a message received ``max_receives`` times moves to the dead-letter queue on its
next receive (redrive). A worker deletes a message only once the job's effects are stored.

Where the queue cannot be reached, its methods raise ``textnlp.errors.ServiceUnavailable``
(``dependency="queue"``; the database queue's come from the database engine as
``"database"``). ``hand_back`` is the one way to give a message back that does not move it
towards the dead-letter queue: a worker stopping (SIGTERM) or waiting out an outage is not a
failed attempt of the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class QueueMessage:
    """One delivery of a message. ``receipt`` is valid for this delivery only."""

    id: str
    body: str
    receipt: str
    receive_count: int
    queue: str
    #: The FIFO message group ("" on standard queues and the database queue).
    group_id: str = ""
    #: The X-Ray trace of whoever sent it (``observability.spans.trace_header``), or None.
    trace_header: str | None = None


@runtime_checkable
class JobQueue(Protocol):
    """One queue (with its dead-letter queue behind it)."""

    name: str
    #: Visibility timeout a receive applies, in seconds.
    visibility_timeout_s: int
    #: Receives after which a message is dead-lettered.
    max_receives: int

    def send(
        self, body: str, *, group_id: str, dedup_id: str, trace_header: str | None = None
    ) -> str:
        """Enqueue ``body``; returns the message id. ``dedup_id`` drops repeats;
        ``trace_header`` travels beside the body (SQS's ``AWSTraceHeader``)."""
        ...

    def receive(self, max_messages: int = 1, wait_s: float = 0.0) -> list[QueueMessage]:
        """Up to ``max_messages`` visible messages, waiting up to ``wait_s`` for the first."""
        ...

    def extend(self, message: QueueMessage, timeout_s: int) -> None:
        """Keep ``message`` invisible ``timeout_s`` more seconds (the worker's heartbeat)."""
        ...

    def release(self, message: QueueMessage, delay_s: int = 0) -> None:
        """Make ``message`` visible again in ``delay_s``; this receive counts (a failed
        attempt)."""
        ...

    def hand_back(self, message: QueueMessage) -> None:
        """Make ``message`` visible again now without this receive counting towards
        ``max_receives`` (the next delivery's count is at most this one's)."""
        ...

    def delete(self, message: QueueMessage) -> None:
        """Acknowledge ``message``: it is done."""
        ...

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        """Move ``message`` to the dead-letter queue now (malformed or hopeless)."""
        ...

    def dead_letters(self, max_messages: int = 10) -> list[QueueMessage]:
        """Messages in the dead-letter queue not looked at for a while (they stay there)."""
        ...

    def close(self) -> None: ...


#: The roles a worker can be told to consume (``textnlp worker --queues``).
QUEUE_ROLES = ("generation", "batch", "validation")


@dataclass
class QueuePair:
    """The queues of the design: generation (FIFO, short jobs), batch (long jobs) and
    validation (finished jobs for the CPU validation service)."""

    generation: JobQueue
    batch: JobQueue
    validation: JobQueue

    def role(self, role: str) -> JobQueue:
        """The queue of a role (``generation``, ``batch``, ``validation``)."""
        if role not in QUEUE_ROLES:
            raise KeyError(role)
        queue: JobQueue = getattr(self, role)
        return queue

    def by_name(self, name: str) -> JobQueue:
        """The queue with this name (as stored in a job's outbox message)."""
        for queue in (self.generation, self.batch, self.validation):
            if name == queue.name:
                return queue
        raise KeyError(name)

    def close(self) -> None:
        self.generation.close()
        self.batch.close()
        self.validation.close()
