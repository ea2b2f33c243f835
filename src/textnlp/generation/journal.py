"""The run journal: an append-only JSONL file beside the output, one line per finished record.

It is what makes ``--resume`` and Ctrl-C safe. Each record is flushed when it is done, so a
killed run loses at most the line being written; that torn last line is cut off on resume. The
dataset file itself is only ever (re)written atomically from the journal.

A resume continues the run its records came from, or nothing: ``check_resume`` compares the
request with the provenance of every finished record (template id and version, model, sampling
parameters, the seed of each index, every variable the run gives that index) and refuses a
count below a finished index, so that a resume never mixes two runs in one file nor drops
finished records. (A template edited without a new ``version`` goes unnoticed: records do not
carry the template's text.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from textnlp.domain import GenerationParams, Record
from textnlp.errors import Conflict, OutputError
from textnlp.generation.side_files import check_side_file, open_side_file
from textnlp.generation.templates import record_seed
from textnlp.generation.writers import kept_mode, usual_mode


def journal_path(output: Path) -> Path:
    return output.with_name(f"{output.name}.partial.jsonl")


@dataclass
class JournalIndex:
    """Where each finished record's line is (the last write of an index wins), and which are
    not ``ok``: what a run's end needs to write its file without holding the records."""

    offsets: dict[int, int] = field(default_factory=dict)
    not_ok: set[int] = field(default_factory=set)

    @property
    def ok(self) -> int:
        return len(self.offsets) - len(self.not_ok)


class RunJournal:
    def __init__(self, path: Path, like: Path | None = None) -> None:
        """``like``: the output, whose permissions the journal takes (it holds the same
        records: a private dataset's journal is private too)."""
        self.path = path
        self.like = like
        self._handle: IO[str] | None = None
        self._unsynced = 0

    def scan(self) -> JournalIndex:
        """Every finished record's place; cuts a torn tail (a line cut short, or not a
        record)."""
        index = JournalIndex()
        check_side_file(self.path)  # a planted link or FIFO is neither read nor cut
        if not self.path.exists():
            return index
        good_bytes = 0
        with self.path.open("rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                try:
                    record = Record.model_validate_json(raw)
                except ValidationError:
                    break
                index.offsets[record.index] = good_bytes
                if record.status == "ok":
                    index.not_ok.discard(record.index)
                else:
                    index.not_ok.add(record.index)
                good_bytes += len(raw)
        if good_bytes != self.path.stat().st_size:
            fd = open_side_file(self.path, os.O_RDWR)
            try:
                os.ftruncate(fd, good_bytes)
            finally:
                os.close(fd)
        return index

    def is_empty(self) -> bool:
        """No finished record: a look at the first line only."""
        check_side_file(self.path)
        if not self.path.exists():
            return True
        with self.path.open("rb") as handle:
            first = handle.readline()
        try:
            Record.model_validate_json(first)
        except ValidationError:  # none, torn or not a record: a resume would cut it
            return True
        return not first.endswith(b"\n")

    def records(self, index: JournalIndex, only: set[int] | None = None) -> Iterator[Record]:
        """The records ``index`` places (those in ``only``), in index order, read one at a
        time."""
        wanted = index.offsets if only is None else only
        if not wanted:  # no journal at all (a resume of a run that never started): none
            return
        with self.path.open("rb") as handle:
            for number in sorted(wanted):
                handle.seek(index.offsets[number])
                yield Record.model_validate_json(handle.readline())

    def open(self, *, fresh: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        fd = open_side_file(self.path, flags, 0o600)  # private until it takes its mode
        try:
            # A file's read and write bits only: an HF directory output's mode has x bits.
            mode = kept_mode(self.like) if self.like is not None else usual_mode()
            os.fchmod(fd, mode & 0o666)
            # A descriptor (Path.open cannot take one), closed by ``close``.
            self._handle = open(fd, "a", encoding="utf-8")  # noqa: PTH123, SIM115
        except OSError as exc:
            os.close(fd)
            raise OutputError(f"cannot write {self.path}: {exc.strerror}") from None

    def append(self, record: Record) -> None:
        assert self._handle is not None, "open() the journal first"
        self._handle.write(record.model_dump_json() + "\n")
        self._handle.flush()
        self._unsynced += 1
        if self._unsynced >= 64:
            os.fsync(self._handle.fileno())
            self._unsynced = 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class RunIdentity:
    """What the records of one run share, and what a resume of it must ask for again."""

    template_id: str
    template_version: str
    model: str
    params: GenerationParams
    seed: int
    count: int
    #: Variables fixed by the user (``--var``); the others are sampled from the seed.
    fixed: dict[str, Any] = field(default_factory=dict)
    #: Every variable this run gives record ``index`` (sampled, fixed and computed): a record
    #: made with another ``--var``, or without one given now, is not of this run.
    variables_of: Callable[[int], dict[str, Any]] | None = None


def check_resume(
    records: Iterable[Record],
    run: RunIdentity,
    source: Path | str,
    *,
    keep: Callable[[Record], None] | None = None,
) -> set[int]:
    """The indices of ``records``, once they are known to be of ``run``: ``Conflict`` (one line,
    naming what differs) otherwise. ``keep`` sees each record as it is read (the records of a
    large run are never held)."""
    done: set[int] = set()
    beyond: list[int] = []
    first: tuple[int, str] | None = None  # the lowest index that differs, and how
    expected = run.params.model_dump(exclude={"seed"})
    for record in records:
        index = record.index
        done.add(index)
        if index >= run.count:
            beyond.append(index)
        elif first is None or index < first[0]:
            difference = _difference(record, index, run, expected)
            if difference is not None:
                first = (index, difference)
        if keep is not None:
            keep(record)
    if beyond:
        raise Conflict(
            f"{source} has {len(beyond)} finished records at index {run.count} and above "
            f"(up to {max(beyond)}); resuming with count {run.count} would delete them "
            f"(resume with count {max(beyond) + 1} or more, or write to another file)"
        )
    if first is not None:
        raise Conflict(
            f"cannot resume {source}: its record {first[0]} {first[1]}; resume with the "
            "original options, or write to another file"
        )
    return done


def _difference(
    record: Record, index: int, run: RunIdentity, expected: dict[str, Any]
) -> str | None:
    made = record.provenance
    if (made.template_id, made.template_version) != (run.template_id, run.template_version):
        return (
            f"was made with template {made.template_id!r} version {made.template_version!r}, "
            f"not {run.template_id!r} version {run.template_version!r}"
        )
    if made.model != run.model:
        return f"was made with model {made.model!r}, not {run.model!r}"
    if made.seed != record_seed(run.seed, index):
        return f"was made with another run seed than {run.seed}"
    given = made.params.model_dump(exclude={"seed"})
    for name, value in expected.items():
        if given.get(name) != value:
            return f"was made with {name} {given.get(name)!r}, not {value!r}"
    wanted = run.variables_of(index) if run.variables_of is not None else run.fixed
    for name, value in wanted.items():
        # str(): a CSV or Parquet file gives variables back as text.
        if str(record.variables.get(name)) != str(value):
            return f"has {name}={record.variables.get(name)!r}, not {value!r}"
    return None
