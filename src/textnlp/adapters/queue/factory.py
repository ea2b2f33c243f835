"""Build the design's two queues from settings (the only place that knows the backends)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from textnlp.adapters.queue.base import QueuePair
from textnlp.adapters.queue.database import DatabaseQueue
from textnlp.adapters.queue.sqs import SqsQueue, batch_dead_letter_name
from textnlp.config import Settings


def sqs_client(settings: Settings) -> Any:
    import boto3

    return boto3.client(
        "sqs", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url
    )


def open_queues(settings: Settings, engine: Engine, *, client: Any = None) -> QueuePair:
    """The generation and batch queues: database tables (local) or SQS (aws)."""
    q = settings.queue
    if q.backend == "sqs":
        client = client or sqs_client(settings)
        return QueuePair(
            generation=SqsQueue(
                client,
                q.generation_queue,
                dead_letter_queue=q.dead_letter_queue,
                max_receives=q.max_receives,
                visibility_timeout_s=q.visibility_timeout_s,
                wait_time_s=q.wait_time_s,
            ),
            batch=SqsQueue(
                client,
                q.batch_queue,
                dead_letter_queue=batch_dead_letter_name(settings),
                max_receives=q.max_receives,
                visibility_timeout_s=q.batch_visibility_timeout_s,
                wait_time_s=q.wait_time_s,
            ),
        )
    return QueuePair(
        generation=DatabaseQueue(
            engine,
            q.generation_queue,
            dead_letter_queue=q.dead_letter_queue,
            max_receives=q.max_receives,
            visibility_timeout_s=q.visibility_timeout_s,
        ),
        batch=DatabaseQueue(
            engine,
            q.batch_queue,
            dead_letter_queue=q.dead_letter_queue,
            max_receives=q.max_receives,
            visibility_timeout_s=q.batch_visibility_timeout_s,
        ),
    )
