"""Reading datasets to validate: JSONL (or a JSON array), CSV and Parquet, or records in memory.

Any file works as long as each row has the text field (``field``, a dotted path such as
``data.answer``). Datasets written by ``textnlp.generation.writers`` are understood further:
``variables.*`` become labels, ``provenance.finish_reason`` says whether a text was truncated,
``provenance.template_id`` names the template (whose JSON schema then applies) and ``data``
holds the parsed JSON output. Other files: scalar top-level columns become labels.

Every field is the user's: a record nested deeper than ``MAX_DEPTH`` levels, a string that is not
valid Unicode (JSON's ``"\\ud800"``), a text field that is not text (Parquet binary, a date),
and what ``textnlp.tabular`` refuses in any file (a CSV row with more or fewer fields than its
header, JSON's ``NaN``) are refused with ``DatasetError`` naming the record, never a traceback
further on (the tokeniser, the report).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict

from textnlp import tabular
from textnlp.errors import DatasetError, quoted
from textnlp.services.text_boundary import printable, valid_unicode
from textnlp.validation.safe_schema import MAX_DEPTH

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}


class DatasetRow(BaseModel):
    """What validation needs of one record."""

    model_config = ConfigDict(extra="forbid")

    text: str
    labels: dict[str, Any] = {}
    data: dict[str, Any] | None = None
    finish_reason: str | None = None
    #: The catalogue template a template's record names (a recipe's record: None).
    template_id: str | None = None
    template_version: str | None = None


def load_rows(
    source: Path | str | Sequence[Any], *, field: str = "text", noun: str = "dataset"
) -> list[DatasetRow]:
    """Rows of a dataset file, or of records given as ``Record``s, mappings or strings.

    ``noun`` names the source in errors: ``"dataset"``, or ``"reference"`` for the leakage
    check's seed set."""
    return list(iter_rows(source, field=field, noun=noun))


def iter_rows(
    source: Path | str | Sequence[Any], *, field: str = "text", noun: str = "dataset"
) -> Iterator[DatasetRow]:
    """``load_rows`` one row at a time: a file is read as the rows are consumed (a million
    records' parsed JSON would not fit a worker). A missing file or an unknown format is
    refused at once, a bad record when it is reached."""
    if isinstance(source, str | Path):
        return _rows(iter_file(Path(source), noun), field, str(source), noun)
    where = "the records" if noun == "dataset" else f"the {noun} records"
    return _rows((_as_mapping(item) for item in source), field, where, noun)


def _rows(
    raw: Iterable[Mapping[str, Any]], field: str, where: str, noun: str
) -> Iterator[DatasetRow]:
    empty = True
    for i, item in enumerate(raw):
        empty = False
        yield _row(item, field, f"{where}, record {i + 1}", noun)
    if empty:
        raise DatasetError(f"{noun} {where} is empty")


def files_read(path: Path) -> list[Path]:
    """The files ``read_file(path)`` reads (an export directory's card and data files)."""
    from textnlp.generation.export import CARD_NAME, DATA_GLOB, is_export

    if path.is_dir() and is_export(path):
        return [path / CARD_NAME, *sorted(path.glob(DATA_GLOB))]
    return [path]


def read_file(path: Path, noun: str = "dataset") -> list[dict[str, Any]]:
    return list(iter_file(path, noun))


def iter_file(path: Path, noun: str = "dataset") -> Iterator[dict[str, Any]]:
    """The records of a dataset file, read as they are consumed (a .json array is parsed
    whole); a file that does not exist or of an unknown format is refused at once."""
    from textnlp.generation.export import is_export

    if path.is_dir() and is_export(path):  # a dataset directory made by ``generate -o DIR/``
        return _export(path, noun)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"unknown {noun} format {path.suffix or '(no extension)'!r} for {path}; "
            f"use {', '.join(FORMATS)}"
        )
    if not path.is_file():
        raise DatasetError(
            f"{noun} {path} does not exist" if not path.exists() else f"{noun} {path} is not a file"
        )
    return _records(path, fmt, noun)


def _export(path: Path, noun: str) -> Iterator[dict[str, Any]]:
    from pydantic import ValidationError

    from textnlp.generation.export import read_export

    try:
        for record in read_export(path):
            yield record.model_dump(mode="json")
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, ValidationError) as exc:  # a damaged export
        raise DatasetError(f"cannot read {noun} {path}: {exc}") from None


def _records(path: Path, fmt: str, noun: str) -> Iterator[dict[str, Any]]:
    try:
        if fmt == "parquet":
            yield from tabular.parquet_rows(path)
            return
        # utf-8-sig: a byte order mark (Excel, Notepad) is not part of the first field's name.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if fmt == "csv":
                yield from (row.fields for row in tabular.csv_rows(handle))
            elif fmt == "json":
                yield from _json_array(handle, path)
            else:
                for number, item in tabular.json_lines(handle):
                    yield _object(item, f"{path}, line {number}")
    except DatasetError:
        raise
    except tabular.TooDeep as exc:
        where = f"{path}, line {exc.line}" if exc.line else str(path)
        raise DatasetError(_too_deep(where)) from None
    except tabular.TableError as exc:
        raise DatasetError(f"{path}, {exc}") from None
    except UnicodeDecodeError:
        raise DatasetError(f"cannot read {noun} {path}: not UTF-8 text") from None
    except (OSError, ValueError) as exc:
        # pyarrow's errors derive from ValueError/OSError too.
        raise DatasetError(f"cannot read {noun} {path}: {exc}") from None


def _json_array(handle: IO[str], path: Path) -> Iterator[dict[str, Any]]:
    data = tabular.json_text(handle.read())
    if not isinstance(data, list):
        raise DatasetError(f"{path}: a .json dataset must be an array of objects")
    for i, item in enumerate(data):
        yield _object(item, f"{path}, item {i + 1}")


def _too_deep(where: str) -> str:
    return f"{where}: JSON nested deeper than {MAX_DEPTH} levels"


def _object(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(item).__name__}")
    return item


def _as_mapping(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return {"text": item}
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json"))
    raise DatasetError(
        f"cannot validate a {type(item).__name__}: give records, mappings or strings"
    )


_MISSING = object()


def lookup(row: Mapping[str, Any], path: str) -> Any:
    """``row[path]`` for flat columns, else the dotted path through nested objects/JSON strings.

    A JSON string nested past the parser's recursion limit raises ``RecursionError``."""
    if path in row:
        return row[path]
    head, dot, rest = path.partition(".")
    if not dot or head not in row:
        return _MISSING
    value = row[head]
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return _MISSING
    return lookup(value, rest) if isinstance(value, Mapping) else _MISSING


_HINTS = {
    "dataset": "choose the text field with --field",
    "reference": "choose the reference's field with --reference-field",
}


def _row(item: Mapping[str, Any], field: str, where: str, noun: str) -> DatasetRow:
    try:
        value = lookup(item, field)
        data = _data(item)
    except RecursionError:  # a JSON string inside a field (a CSV cell)
        raise DatasetError(_too_deep(where)) from None
    problem = _problem(item, "") or _problem(value, field) or _problem(data, "data")
    if problem is not None:
        raise DatasetError(f"{where}: {problem}")
    if value is _MISSING:
        hint = _HINTS.get(noun, _HINTS["dataset"])
        raise DatasetError(f"{where} has no field {field!r} ({hint})")
    finish = lookup(item, "provenance.finish_reason")
    template = lookup(item, "provenance.template_id")
    if lookup(item, "provenance.cells") not in (_MISSING, None, ""):
        template = None  # a recipe's id: no template of the catalogue made it
    version = lookup(item, "provenance.template_version")
    return DatasetRow(
        text=_text(value, field, where),
        labels=_labels(item, field),
        data={str(k): _shown(v) for k, v in data.items()} if isinstance(data, dict) else None,
        finish_reason=finish if isinstance(finish, str) and finish else None,
        template_id=template if isinstance(template, str) and template else None,
        template_version=str(version) if isinstance(version, str | int) else None,
    )


def _data(item: Mapping[str, Any]) -> Any:
    data = lookup(item, "data")
    if isinstance(data, str):
        try:
            return json.loads(data) if data.strip() else None
        except ValueError:
            return None
    return data


def _text(value: Any, field: str, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:  # a structured value (a dict, a number) is validated as its JSON text
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # bytes, dates, a self-referencing record in memory
        kind = "binary" if isinstance(value, bytes | bytearray) else type(value).__name__
        raise DatasetError(f"{where}: field {field!r} holds {kind}, not text") from None


def _problem(value: Any, name: str) -> str | None:
    """Why ``value`` (the field ``name``) cannot be validated: nested deeper than ``MAX_DEPTH``
    levels or a string (or key) that is not valid Unicode; or None. Iterative: no recursion."""
    stack: list[tuple[Any, str, int]] = [(value, name, 0)]
    seen: set[tuple[int, int]] = set()  # records in memory may share (or cycle through) parts
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if not valid_unicode(node):
                field = f"field {quoted(path)}" if path else "a field"
                return f"{field} is not valid Unicode (it holds a lone surrogate)"
            continue
        if not isinstance(node, Mapping | list | tuple) or (id(node), depth) in seen:
            continue
        seen.add((id(node), depth))
        if depth >= MAX_DEPTH:
            whole = f"field {quoted(name)}" if name else "the record"
            return f"{whole} is nested deeper than {MAX_DEPTH} levels"
        pairs = node.items() if isinstance(node, Mapping) else enumerate(node)
        for key, child in pairs:
            if isinstance(key, str) and not valid_unicode(key):
                return f"field name {quoted(printable(key))} is not valid Unicode"
            stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
    return None


def _labels(item: Mapping[str, Any], field: str) -> dict[str, Any]:
    variables = item.get("variables")
    if isinstance(variables, Mapping):
        return {str(k): _shown(v) for k, v in variables.items() if _scalar(v)}
    flat = {k.split(".", 1)[1]: v for k, v in item.items() if k.startswith("variables.")}
    if flat:
        return {k: _shown(v) for k, v in flat.items() if _scalar(v)}
    skip = {field, "text", "data", "index", "status", "error"}
    return {
        k: _shown(v)
        for k, v in item.items()
        if k not in skip and not k.startswith("provenance") and _scalar(v)
    }


def _shown(value: Any) -> Any:
    """``value``, or its text when it is an integer no float can hold (a 400-digit label):
    the report's statistics are floats."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return str(value)
    return value


def _scalar(value: Any) -> bool:
    return value is not None and isinstance(value, str | int | float | bool)
