"""The run journal: an append-only JSONL file beside the output, one line per finished record.

It is what makes ``--resume`` and Ctrl-C safe. Each record is flushed when it is done, so a
killed run loses at most the line being written; that torn last line is cut off on resume. The
dataset file itself is only ever (re)written atomically from the journal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from textnlp.domain import Record


def journal_path(output: Path) -> Path:
    return output.with_name(f"{output.name}.partial.jsonl")


class RunJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._unsynced = 0

    def read(self) -> dict[int, Record]:
        """Finished records by index (the last write of an index wins); cuts a torn tail."""
        records: dict[int, Record] = {}
        if not self.path.exists():
            return records
        good_bytes = 0
        with self.path.open("rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                try:
                    record = Record.model_validate_json(raw)
                except ValidationError:
                    break
                records[record.index] = record
                good_bytes += len(raw)
        if good_bytes != self.path.stat().st_size:
            with self.path.open("r+b") as handle:
                handle.truncate(good_bytes)
        return records

    def open(self, *, fresh: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w" if fresh else "a", encoding="utf-8")

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
