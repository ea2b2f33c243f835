"""Queue names of a test's own: moto's server lives for the whole session, and SQS refuses to
create an existing queue with other attributes (``QueueAlreadyExists``), so every test that
makes queues names them with a suffix of its own."""

from __future__ import annotations

import uuid


def private_queues(suffix: str | None = None) -> dict[str, str]:
    """``queue.*`` settings naming every queue of the design with ``suffix`` (random if None)."""
    s = suffix or uuid.uuid4().hex[:8]
    return {
        "generation_queue": f"gen-{s}.fifo",
        "dead_letter_queue": f"dlq-{s}.fifo",
        "batch_queue": f"batch-{s}",
        "batch_dead_letter_queue": f"batch-dlq-{s}",
        "validation_queue": f"validation-{s}",
        "validation_dead_letter_queue": f"validation-dlq-{s}",
    }
