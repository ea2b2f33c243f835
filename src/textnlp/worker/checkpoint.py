"""Chunked checkpoints: records go to the database in chunks of ``chunk_size``.

The pipeline hands over each finished record; every full chunk is stored by (job id, index)
and is the point where the job looks at the world: a cancel, or a shutdown that hands the job
back. A SIGKILL loses at most the records of the chunk being filled; they are regenerated,
identically, when the message comes back (record i depends only on the seed and i).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textnlp.adapters.db.job_store import JobStore
from textnlp.domain import Record


class StopJob(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside the pipeline's callback to stop at a checkpoint; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Checkpointer:
    def __init__(self, store: JobStore, job_id: str, chunk_size: int, stop: asyncio.Event) -> None:
        self.store = store
        self.job_id = job_id
        self.chunk_size = chunk_size
        self.stop = stop
        self.cancelled = False
        self.stored = 0
        self._buffer: list[Record] = []
        #: Called after each stored chunk (the runner refreshes the owner's budget there).
        self.after_flush: Callable[[], None] | None = None

    def on_record(self, record: Record) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.chunk_size:
            self.flush()
            if self.cancelled:
                raise StopJob("cancelled")
            if self.stop.is_set():
                raise StopJob("shutdown")

    def flush(self) -> None:
        chunk, self._buffer = self._buffer, []
        if chunk:
            self.stored += self.store.save_records(self.job_id, chunk)
        # One cheap read per chunk: a user's cancel stops the job within a chunk.
        self.cancelled = self.store.heartbeat(self.job_id) == "cancelled"
        if self.after_flush is not None:
            self.after_flush()


def unwrap(error: BaseException) -> BaseException:
    """The error inside the pipeline's task group: a StopJob first, else the first leaf."""
    if not isinstance(error, BaseExceptionGroup):
        return error
    leaves = [unwrap(e) for e in error.exceptions]
    stops = [e for e in leaves if isinstance(e, StopJob)]
    return stops[0] if stops else leaves[0]
