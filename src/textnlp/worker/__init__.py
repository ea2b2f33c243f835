"""The queue consumer that runs batch jobs through the generation pipeline."""

from textnlp.worker.consumer import Worker, WorkerOptions

__all__ = ["Worker", "WorkerOptions"]
