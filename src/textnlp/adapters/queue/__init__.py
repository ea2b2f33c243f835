"""Job queues: one small interface, a database-table queue (local) and SQS (aws)."""

from textnlp.adapters.queue.base import JobQueue, QueueMessage, QueuePair
from textnlp.adapters.queue.factory import open_queues

__all__ = ["JobQueue", "QueueMessage", "QueuePair", "open_queues"]
