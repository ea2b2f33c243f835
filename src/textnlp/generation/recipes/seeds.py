"""Seed datasets: the rows a ``seed`` column draws from, read once before a run.

A seed file is user input, possibly hostile: it is read only if it is a regular file of a known
format (``.jsonl``/``.ndjson``, ``.csv``, ``.parquet``), within size and row caps, and errors
name the file and the line but never quote its contents. Every row becomes a JSON-safe dict
with the same keys (the file's fields, in order of first appearance; a key a JSONL row lacks is
``None``), so a template that names a field sees it in every record.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from textnlp.errors import RecipeError
from textnlp.services.text_boundary import invalid_text_at
from textnlp.tabular import TableError, csv_rows, json_lines, parquet_rows

#: Past this many rows (or bytes) a seed file is refused: it is read into memory whole.
#: Rows are read by ``textnlp.tabular``, as validation and prompt files read theirs.
MAX_SEED_ROWS = 1_000_000
MAX_SEED_BYTES = 1 << 30

_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


class SeedExhausted(RecipeError):
    """A ``replace: false`` seed column has given every row once and a record needs another."""


def load_seed_rows(path: Path, *, name: str | None = None) -> list[dict[str, Any]]:
    """The rows of a seed file, each a JSON-safe dict with the file's fields.

    ``name`` is how errors call the file (the path as the recipe wrote it, so that a server's
    directories do not leak into messages); it defaults to ``path``.
    """
    label = display_name(name if name is not None else str(path))
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RecipeError(
            f"seed file {label}: unknown format {path.suffix[:20] or '(no extension)'!r}; "
            f"use {', '.join(_FORMATS)}"
        )
    try:
        if not path.exists():
            raise RecipeError(f"seed file {label} does not exist")
        if not path.is_file():
            raise RecipeError(f"seed file {label} is not a regular file")
        if path.stat().st_size > MAX_SEED_BYTES:
            raise RecipeError(f"seed file {label} is larger than {MAX_SEED_BYTES >> 20} MiB")
        if fmt == "parquet":
            rows = _parquet(path, label)
        else:
            # utf-8-sig: spreadsheets often start CSV files with a byte order mark.
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = _csv(handle, label) if fmt == "csv" else _jsonl(handle, label)
    except RecipeError:
        raise
    except TableError as exc:  # where and what, never the file's contents
        raise RecipeError(f"seed file {label}: {exc}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"seed file {label} is not UTF-8 text") from None
    except (OSError, ValueError) as exc:
        # pyarrow's errors derive from these; their messages may quote the file, so only
        # the kind of error is kept.
        raise RecipeError(f"seed file {label} cannot be read ({type(exc).__name__})") from None
    if not rows:
        raise RecipeError(f"seed file {label} is empty")
    return _uniform_keys(rows)


def display_name(name: str) -> str:
    """A path fit for a one-line message: short, without control characters."""
    return name if name.isprintable() and len(name) <= 200 else repr(name[:200])


def _jsonl(lines: Iterable[str], label: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, item in json_lines(lines):
        if not isinstance(item, dict):
            raise RecipeError(f"seed file {label}: line {number} is not a JSON object")
        if (invalid := invalid_text_at(item)) is not None:  # "\\ud800": fails every prompt
            where, problem = invalid
            field = ".".join(map(str, where))
            raise RecipeError(f"seed file {label}: line {number}, field {field}: {problem}")
        _count(rows, label)
        rows.append(item)
    return rows


def _csv(handle: Iterable[str], label: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row in csv_rows(handle):
        _count(rows, label)
        rows.append(row.fields)
    return rows


def _parquet(path: Path, label: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row in parquet_rows(path):  # pyarrow's errors: load_seed_rows names only their kind
        _count(rows, label)
        try:
            rows.append({str(key): json_safe(value) for key, value in row.items()})
        except ValueError as exc:  # a type JSON has no place for; says which, not the value
            raise RecipeError(f"seed file {label}: {exc}") from None
    return rows


def _count(rows: list[dict[str, Any]], label: str) -> None:
    if len(rows) >= MAX_SEED_ROWS:
        raise RecipeError(f"seed file {label} has more than {MAX_SEED_ROWS:,} rows")


def _uniform_keys(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    if all(len(row) == len(fields) for row in rows):
        return rows  # CSV, Parquet and regular JSONL: nothing to fill
    return [{field: row.get(field) for field in fields} for row in rows]


def json_safe(value: Any) -> Any:
    """``value`` as something ``json.dumps`` writes as standard JSON (Parquet's and YAML's types).

    Dates and times become ISO 8601 strings, decimals floats, NaN and infinities ``None``;
    bytes are decoded as UTF-8 or refused.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("binary values are not supported") from None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    raise ValueError(f"values of type {type(value).__name__} are not supported")
