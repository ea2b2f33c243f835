"""Chunked checkpoints: a job's record sink, the database, in chunks of ``chunk_size``.

The pipeline hands over each finished record (``generation.sinks.RecordSink``); every full
chunk is stored by (job id, index) and is the point where the job looks for a user's cancel.
A shutdown does not wait for a full chunk: once ``stop`` is set, the records held are stored
with the next record to finish, which ends the run (``StopJob("shutdown")``; the runner cancels
a run in which none finishes soon, see ``worker.runner.STOP_GRACE_S``). A SIGKILL loses at most
the records of the chunk being filled; they are regenerated, identically, when the message
comes back (record i depends only on the seed and i).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from textnlp.domain import Record
from textnlp.services.job_runs import JobRuns


class StopJob(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside the pipeline's callback to stop at a checkpoint; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Checkpointer:
    """The record sink of a job run: the job store, a chunk at a time (no local file)."""

    def __init__(
        self,
        runs: JobRuns,
        job_id: str,
        chunk_size: int,
        stop: asyncio.Event,
        force: asyncio.Event | None = None,
    ) -> None:
        self.runs = runs
        self.job_id = job_id
        self.source = f"job {job_id}"
        self.chunk_size = chunk_size
        #: A shutdown: stop at the next record. ``force`` (a second signal): stop now.
        self.stop = stop
        self.force = force or asyncio.Event()
        self.cancelled = False
        self.stored = 0
        #: The run's hold on its owner's spending cap (set by the runner): the records stored
        #: leave it, their cost now the job's.
        self.hold_id: str | None = None
        self._buffer: list[Record] = []

    def finished(self) -> Iterator[Record]:
        return self.runs.stored_records(self.job_id, ok_only=False)  # in index order, batched

    def start(self, *, fresh: bool) -> None:
        """Nothing to open: a job always resumes from what is stored."""

    def end(self, count: int, *, complete: bool) -> None:
        self.flush()

    def abort(self) -> None:
        self.flush()  # the finished records are good whatever failed after them

    def append(self, record: Record) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.chunk_size or self.stop.is_set():
            self.flush()
            if self.cancelled:
                raise StopJob("cancelled")
            if self.stop.is_set():  # the records still in flight are cancelled with the run
                raise StopJob("shutdown")

    def flush(self) -> None:
        chunk, self._buffer = self._buffer, []
        if chunk:
            self.stored += self.runs.save_chunk(self.job_id, chunk, hold_id=self.hold_id)
        # One cheap read per chunk: a user's cancel stops the job within a chunk, and so does
        # its delete (no state: the job is gone, its records with it).
        self.cancelled = self.runs.heartbeat(self.job_id) in {"cancelled", None}


def unwrap(error: BaseException) -> BaseException:
    """The error inside the pipeline's task group: a StopJob first, else the first leaf."""
    if not isinstance(error, BaseExceptionGroup):
        return error
    leaves = [unwrap(e) for e in error.exceptions]
    stops = [e for e in leaves if isinstance(e, StopJob)]
    return stops[0] if stops else leaves[0]
