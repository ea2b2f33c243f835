"""Where a run's finished records go, and where a resume finds them.

The pipeline generates; a sink keeps. ``FileSink`` is the CLI's and the library's: a run
journal beside the output file, and the file written atomically from it when the run ends. It
is used as a context manager, which holds the output's lock (``output_lock``) for the run: a
second run on the same output is refused rather than sharing the journal. A fresh run over an
earlier run's unfinished journal warns (``DiscardedProgress``) before starting over.

An existing output is replaced only by a run that completes, or by a resume of that very file
(the journal holds what it held): a run stopped by Ctrl-C or a spending cap leaves it as it
was, its records in the journal for ``--resume``; on a new path its records are written as a
valid file. A run whose every record failed writes nothing (its journal, of no use to a resume
that should try them again, is removed).
The worker's sink is the job store (``worker.checkpoint.Checkpointer``): records go to the
database in chunks, with no local file, because another task may take the job over.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Protocol

from textnlp.domain import Record
from textnlp.generation.export import ExportSpec
from textnlp.generation.journal import RunJournal, journal_path
from textnlp.generation.output_lock import OutputLock
from textnlp.generation.writers import iter_dataset, write_dataset, write_target


class RecordSink(Protocol):
    #: Named in a refused resume's message (a file, a job).
    source: str

    def finished(self) -> Iterable[Record]:
        """The records a resume continues from, each index once, in index order (read as
        they are used: a large run is not held); nothing is written before the pipeline has
        checked they are of the same run."""
        ...

    def start(self, *, fresh: bool) -> None:
        """Open for appending; ``fresh`` forgets what an earlier run left."""
        ...

    def append(self, record: Record) -> None:
        """Keep a finished record (it may raise to stop the run at a checkpoint)."""
        ...

    def end(self, count: int, *, complete: bool) -> None:
        """The run stopped with its records finished (done, interrupted, or refused by a
        spending cap): make them the result. ``complete``: every index below ``count``."""
        ...

    def abort(self) -> None:
        """The run failed: keep the progress for a resume, change nothing else."""
        ...


class DiscardedProgress(UserWarning):
    """A run that does not resume starts over an earlier run's unfinished journal."""

    def __init__(self, output: Path, count: int) -> None:
        super().__init__(
            f"discarding {count} unfinished records of an earlier run of {output} "
            "(resume to keep them)"
        )
        self.output = output
        self.count = count


class FileSink:
    """A run journal beside ``output``; ``output`` is (re)written only from the journal.
    ``with FileSink(...)``: the run holds the output's lock."""

    def __init__(
        self, output: Path, export: ExportSpec | None = None, rejects: Path | None = None
    ) -> None:
        self.output = output
        #: Where a recipe run's rejected and failed candidates are written too (with reasons).
        self.rejects = rejects
        #: How a recipe's records become training rows (``messages``...) in an HF directory.
        self.export = export
        self.source = str(output)
        self.journal = RunJournal(journal_path(output), like=output)
        #: A resume from the output itself (its journal gone with the run that finished it).
        self._from_output = False
        #: The output's lock, and the rejects file's: two runs given one --rejects would
        #: each replace the other's. Taken on the file written (a link's target: two runs given
        #: a file and a link to it write one file).
        given = (output, rejects)
        self._locks = [OutputLock(write_target(p)) for p in given if p is not None]
        self._held = ExitStack()
        #: Whether ``end`` (re)wrote ``output``: what goes with its records (an export's card)
        #: is written then only, never over an earlier run's dataset that this run left as it was.
        self.wrote = False

    def __enter__(self) -> FileSink:
        with ExitStack() as stack:  # a lock not taken releases those taken before it
            for lock in self._locks:  # before the journal is read or written
                stack.enter_context(lock)
            self._held = stack.pop_all()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._held.close()

    def finished(self) -> Iterator[Record]:
        place = self.journal.scan()
        if place.offsets or not self.output.exists():
            self.source = str(self.journal.path)
            return self.journal.records(place)
        # An earlier run finished and removed its journal: resume from the file itself.
        self._from_output = True
        self.source = str(self.output)
        return iter_dataset(self.output)

    def start(self, *, fresh: bool) -> None:
        if self._from_output and not fresh:
            self.journal.open(fresh=True)
            for record in iter_dataset(self.output):
                self.journal.append(record)
            self.journal.close()
        if fresh:
            self._warn_if_discarding()
        self.journal.open(fresh=fresh)

    def _warn_if_discarding(self) -> None:
        unfinished = len(self.journal.scan().offsets)
        if unfinished:
            warnings.warn(DiscardedProgress(self.output, unfinished), stacklevel=2)

    def append(self, record: Record) -> None:
        self.journal.append(record)

    def end(self, count: int, *, complete: bool) -> None:
        self.journal.close()
        place = self.journal.scan()
        # The first ``count`` records that passed: a template's indices 0..count-1, a recipe's
        # accepted candidates (its rejected and failed ones stay in the journal only). A run
        # with none leaves the file as it was: one whose every record failed empties no
        # dataset. A stopped run (Ctrl-C, a spending cap) replaces no other run's dataset
        # either: its records stay in the journal until a resume completes it.
        if place.ok and (complete or self._from_output or _is_new(self.output)):
            accepted = (r for r in self.journal.records(place) if r.status == "ok")
            write_dataset(self.output, islice(accepted, count), export=self.export)
            self.wrote = True
        if self.rejects is not None and (complete or _is_new(self.rejects)):
            write_dataset(self.rejects, self.journal.records(place, only=place.not_ok))
        if complete or not place.offsets:  # an empty journal is no progress to resume
            self.journal.remove()

    def abort(self) -> None:
        self.journal.close()
        if self.journal.is_empty():  # refused before its first record: nothing to resume
            self.journal.remove()


def _is_new(path: Path) -> bool:
    """Nothing at ``path`` for a stopped run to replace (not even a dangling link)."""
    return not (path.exists() or path.is_symlink())


class MemorySink:
    """Records kept in memory: a preview's, which writes no dataset."""

    source = "preview"

    def __init__(self) -> None:
        self.records: list[Record] = []

    def finished(self) -> Iterator[Record]:
        return iter(())

    def start(self, *, fresh: bool) -> None:
        self.records = []

    def append(self, record: Record) -> None:
        self.records.append(record)

    def end(self, count: int, *, complete: bool) -> None:
        """Nothing to write."""

    def abort(self) -> None:
        """Nothing to keep."""
