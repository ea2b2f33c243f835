"""Dataset files: JSONL, CSV and Parquet, chosen by the file's extension.

JSONL keeps each ``Record`` as nested JSON. CSV and Parquet are flat: ``index``, ``text``,
``data`` (the parsed JSON output, as a JSON string), one ``variables.<name>`` column per variable
and one ``provenance.<field>`` column per provenance field (``params`` as JSON).

Writes are atomic: a file is written beside the target and renamed over it, so an existing
dataset is never half-overwritten.

An output's directory must exist, except below the working directory: a relative path without
``..`` may name new directories (``-o out/data.jsonl``), created when the run starts. A mistyped
absolute path (``/nonexistent-dir/x.jsonl``) is refused rather than grown into a directory tree.
Whether the directory takes files is tried for real (a file created and removed), since
permission bits say nothing about ``/proc`` or a read-only mount.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from textnlp.domain import Record
from textnlp.errors import DatasetError, OutputError

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: dict[str, Format] = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def format_of(path: Path) -> Format:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(FORMATS)
        raise OutputError(
            f"unknown output format {path.suffix or '(no extension)'!r} for {path}; use {known}"
        ) from None


def check_writable(path: Path) -> Format:
    """Fail early (before any model runs) when ``path`` cannot hold a dataset."""
    fmt = format_of(path)
    if path.is_dir():
        raise OutputError(f"output path {path} is a directory")
    parent = ensure_directory(path)
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {path}: permission denied")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return fmt


def ensure_directory(path: Path) -> Path:
    """The directory of ``path``, created only when it lies below the working directory."""
    parent = path.parent if str(path.parent) else Path()
    for ancestor in (parent, *parent.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise OutputError(f"cannot write {path}: {ancestor} is not a directory")
    if parent.is_dir():
        return parent
    if parent.is_absolute() or ".." in parent.parts:
        raise OutputError(f"cannot write {path}: directory {parent} does not exist")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {parent}: {exc.strerror}") from None
    return parent


def flatten(record: Record) -> dict[str, Any]:
    row: dict[str, Any] = {
        "index": record.index,
        "text": record.text,
        "data": json.dumps(record.data, ensure_ascii=False) if record.data is not None else "",
    }
    for name, value in record.variables.items():
        row[f"variables.{name}"] = value
    for name, value in record.provenance.model_dump(mode="json").items():
        row[f"provenance.{name}"] = json.dumps(value) if isinstance(value, dict) else value
    return row


def unflatten(row: dict[str, Any]) -> Record:
    variables = {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("variables.")}
    provenance = {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("provenance.")}
    if isinstance(provenance.get("params"), str):
        provenance["params"] = json.loads(provenance["params"])
    data = row.get("data")
    return Record.model_validate(
        {
            "index": int(row["index"]),
            "text": row.get("text") or "",
            "data": json.loads(data) if data else None,
            "variables": variables,
            "provenance": provenance,
        }
    )


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success."""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        # A file descriptor, not a path: Path.open cannot take it.
        with open(fd, mode, encoding=encoding, newline=newline) as handle:  # noqa: PTH123
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:  # a full disk, a vanished directory: the old file stays as it was
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_dataset(path: Path, records: Iterable[Record]) -> int:
    """Write ``records`` to ``path`` atomically in the format of its extension."""
    fmt = format_of(path)
    rows = list(records)
    if fmt == "jsonl":
        with atomic_file(path) as handle:
            for record in rows:
                handle.write(record.model_dump_json() + "\n")
    elif fmt == "csv":
        flat = [flatten(r) for r in rows]
        columns = _columns(flat)
        with atomic_file(path) as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(flat)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = [flatten(r) for r in rows]
        columns = _columns(flat)
        table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in flat])
        with atomic_file(path, "wb") as handle:
            pq.write_table(table, handle)
    return len(rows)


def read_dataset(path: Path) -> list[Record]:
    """Records of a dataset this module wrote (for resume and reports)."""
    fmt = format_of(path)
    try:
        if fmt == "jsonl":
            with path.open(encoding="utf-8") as handle:
                return [Record.model_validate_json(line) for line in handle if line.strip()]
        if fmt == "csv":
            with path.open(encoding="utf-8", newline="") as handle:
                return [unflatten(row) for row in csv.DictReader(handle)]
        import pyarrow.parquet as pq

        return [unflatten(row) for row in pq.read_table(path).to_pylist()]
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from None


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns) or ["index", "text", "data"]
