"""Build the design's queues from settings (the only place that knows the backends)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textnlp.adapters.queue.base import JobQueue, QueuePair
from textnlp.adapters.queue.sqs import SqsQueue
from textnlp.config import Settings

if TYPE_CHECKING:  # SQLAlchemy is the api extra's: importing the package must not need it
    from sqlalchemy import Engine


def sqs_client(settings: Settings) -> Any:
    import boto3

    return boto3.client(
        "sqs", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url
    )


def open_queues(settings: Settings, engine: Engine, *, client: Any = None) -> QueuePair:
    """The generation, batch and validation queues: database tables (local) or SQS (aws)."""
    q = settings.queue
    names = {
        "generation": (q.generation_queue, q.dead_letter_queue),
        "batch": (q.batch_queue, q.batch_dead_letter_queue),
        "validation": (q.validation_queue, q.validation_dead_letter_queue),
    }
    queues: dict[str, JobQueue] = {}
    for role, (name, dead_letters) in names.items():
        if q.backend == "sqs":
            client = client or sqs_client(settings)
            queues[role] = SqsQueue(
                client,
                name,
                dead_letter_queue=dead_letters,
                max_receives=q.max_receives,
                visibility_timeout_s=q.visibility_timeout_s,
                wait_time_s=q.wait_time_s,
            )
        else:
            from textnlp.adapters.queue.database import DatabaseQueue

            queues[role] = DatabaseQueue(
                engine,
                name,
                dead_letter_queue=dead_letters,
                max_receives=q.max_receives,
                visibility_timeout_s=q.visibility_timeout_s,
            )
    return QueuePair(**queues)
