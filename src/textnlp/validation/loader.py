"""Reading datasets to validate: JSONL (or a JSON array), CSV and Parquet, or records in memory.

Any file works as long as each row has the text field (``field``, a dotted path such as
``data.answer``). Datasets written by ``textnlp.generation.writers`` are understood further:
``variables.*`` become labels, ``provenance.finish_reason`` says whether a text was truncated,
``provenance.template_id`` names the template (whose JSON schema then applies) and ``data``
holds the parsed JSON output. Other files: scalar top-level columns become labels.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from textnlp.errors import DatasetError

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
    template_id: str | None = None


def load_rows(source: Path | str | Sequence[Any], *, field: str = "text") -> list[DatasetRow]:
    """Rows of a dataset file, or of records given as ``Record``s, mappings or strings."""
    if isinstance(source, str | Path):
        raw = read_file(Path(source))
        where = str(source)
    else:
        raw = [_as_mapping(item) for item in source]
        where = "the records"
    if not raw:
        raise DatasetError(f"dataset {where} is empty")
    return [_row(item, field, f"{where}, record {i + 1}") for i, item in enumerate(raw)]


def read_file(path: Path) -> list[dict[str, Any]]:
    from textnlp.generation.export import is_export, read_export

    if path.is_dir() and is_export(path):  # a dataset directory made by ``generate -o DIR/``
        return [record.model_dump(mode="json") for record in read_export(path)]
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"unknown dataset format {path.suffix or '(no extension)'!r} for {path}; "
            f"use {', '.join(FORMATS)}"
        )
    if not path.is_file():
        raise DatasetError(
            f"dataset {path} does not exist"
            if not path.exists()
            else f"dataset {path} is not a file"
        )
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return [dict(row) for row in pq.read_table(path).to_pylist()]
        with path.open(encoding="utf-8", newline="") as handle:
            if fmt == "csv":
                return [dict(row) for row in csv.DictReader(handle)]
            if fmt == "json":
                data = json.load(handle)
                if not isinstance(data, list):
                    raise DatasetError(f"{path}: a .json dataset must be an array of objects")
                return [_object(item, f"{path}, item {i + 1}") for i, item in enumerate(data)]
            return list(_jsonl(handle, path))
    except DatasetError:
        raise
    except UnicodeDecodeError:
        raise DatasetError(f"cannot read dataset {path}: not UTF-8 text") from None
    except (OSError, ValueError, csv.Error) as exc:
        # pyarrow's errors derive from ValueError/OSError too.
        raise DatasetError(f"cannot read dataset {path}: {exc}") from None


def _jsonl(lines: Iterable[str], path: Path) -> Iterable[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}, line {number}: invalid JSON ({exc.args[0]})") from None
        yield _object(item, f"{path}, line {number}")


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
    """``row[path]`` for flat columns, else the dotted path through nested objects/JSON strings."""
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


def _row(item: Mapping[str, Any], field: str, where: str) -> DatasetRow:
    value = lookup(item, field)
    if value is _MISSING:
        raise DatasetError(f"{where} has no field {field!r} (choose the text field with --field)")
    text = (
        ""
        if value is None
        else value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False)
    )
    data = lookup(item, "data")
    if isinstance(data, str):
        try:
            data = json.loads(data) if data.strip() else None
        except ValueError:
            data = None
    finish = lookup(item, "provenance.finish_reason")
    template = lookup(item, "provenance.template_id")
    return DatasetRow(
        text=text,
        labels=_labels(item, field),
        data=data if isinstance(data, dict) else None,
        finish_reason=finish if isinstance(finish, str) and finish else None,
        template_id=template if isinstance(template, str) and template else None,
    )


def _labels(item: Mapping[str, Any], field: str) -> dict[str, Any]:
    variables = item.get("variables")
    if isinstance(variables, Mapping):
        return {str(k): v for k, v in variables.items() if _scalar(v)}
    flat = {k.split(".", 1)[1]: v for k, v in item.items() if k.startswith("variables.")}
    if flat:
        return {k: v for k, v in flat.items() if _scalar(v)}
    skip = {field, "text", "data", "index", "status", "error"}
    return {
        k: v
        for k, v in item.items()
        if k not in skip and not k.startswith("provenance") and _scalar(v)
    }


def _scalar(value: Any) -> bool:
    return value is not None and isinstance(value, str | int | float | bool)
