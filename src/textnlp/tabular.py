"""Rows of tabular files a user gives (CSV, JSON Lines, Parquet), read one at a time.

The one reader behind validation's datasets (``validation.loader``), recipes' seed files
(``generation.recipes.seeds``) and jobs' prompt files (``services.job_prompts``), so a file one
of them accepts is not refused (or silently cut) by another. It is strict where a lenient
reader would change the data without a word: a CSV row with more or fewer fields than its
header (``csv.DictReader`` files the extra ones under ``None`` and fills missing ones with
``None``), a header naming a field twice (the last column wins), a quote left open, and JSON's
``NaN`` and infinities (``strict_json``).

Its errors (``TableError``, a ``ValueError`` like ``strict_json``'s) say where and what, never
quoting the file; each caller names the file its own way and keeps its own limits.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from textnlp import strict_json

#: Parquet rows made into Python objects at a time: bounded memory whatever the row groups.
PARQUET_BATCH = 4096
#: The longest CSV field read: C ``long``'s bound on every platform (the file's size is the
#: real bound). ``csv`` refuses a field over 128 KiB by default, and a record's text has none.
CSV_FIELD_LIMIT = 2**31 - 1


def allow_long_csv_fields() -> None:
    """Let ``csv`` read fields as long as textnlp writes them (a limit of the whole process,
    so only ever raised). Every reader of CSV calls it: the ones here, and dataset files'."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


class TableError(ValueError):
    """A row (or the header) that cannot be read; ``line`` where it starts, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class TooDeep(TableError):
    """A JSON line nested deeper than the parser goes."""


class CsvRow(NamedTuple):
    #: 1 for the first row after the header; ``line``: the line it starts on.
    number: int
    line: int
    fields: dict[str, str]


def csv_rows(lines: Iterable[str]) -> Iterator[CsvRow]:
    """The rows of CSV text (``lines`` as ``open(..., newline="")`` gives them), each with as
    many fields as the header."""
    _, rows = csv_table(lines)
    yield from rows


def csv_table(lines: Iterable[str]) -> tuple[list[str], Iterator[CsvRow]]:
    """(the header, read now; its rows, read as they are consumed)."""
    allow_long_csv_fields()
    # strict: an unterminated quote is an error, not a field swallowing the rest of the file.
    reader = csv.DictReader(lines, strict=True)
    try:
        header = list(reader.fieldnames or ())
    except csv.Error as exc:
        raise _unreadable(exc, 1) from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise TableError(f"the header repeats {', '.join(repeated)}", 1)
    return header, _rows(reader, len(header))


def _rows(reader: csv.DictReader[str], width: int) -> Iterator[CsvRow]:
    # The rows of DictReader's own csv reader, which yields blank lines as [] where DictReader
    # skips them: its line numbers stay right after a blank line.
    header = list(reader.fieldnames or ())
    rows = reader.reader
    ended = rows.line_num  # the line the last row (or the header) ended on
    number = 0
    try:
        for fields in rows:
            if not fields:  # a blank line
                ended = rows.line_num
                continue
            number += 1
            if len(fields) != width:
                where = f"row {number} (line {ended + 1})"
                count = f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
                raise TableError(f"{where}: {count}, the header has {width}", ended + 1)
            yield CsvRow(number, ended + 1, dict(zip(header, fields, strict=True)))
            ended = rows.line_num
    except csv.Error as exc:
        raise _unreadable(exc, ended + 1) from None


def _unreadable(exc: csv.Error, line: int) -> TableError:
    # csv's messages describe the problem ("line contains NUL"), not the data.
    detail = "a quoted field is never closed" if str(exc) == "unexpected end of data" else exc
    return TableError(f"line {line}: cannot read the CSV record ({detail})", line)


def json_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of JSON Lines text."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = strict_json.loads(line)
        except RecursionError:
            raise TooDeep(f"line {number}: JSON nested too deeply", number) from None
        except ValueError as exc:
            # JSONDecodeError.msg says what is wrong ("Expecting value") without the text;
            # strict_json's own message says which constant or number it refused.
            reason = getattr(exc, "msg", None) or str(exc)
            raise TableError(f"line {number} is not valid JSON ({reason})", number) from None
        yield number, value


def parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file, a batch of ``PARQUET_BATCH`` in memory at a time (pyarrow's
    errors are ``OSError``/``ValueError``, left to the caller: their messages may quote data)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH):
            yield from batch.to_pylist()


def json_text(text: str) -> Any:
    """A whole JSON document (a ``.json`` dataset), as strictly as a line."""
    try:
        return strict_json.loads(text)
    except RecursionError:
        raise TooDeep("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise TableError(f"line {exc.lineno} is not valid JSON ({exc.msg})", exc.lineno) from None
    except ValueError as exc:
        raise TableError(f"not valid JSON ({exc})") from None
