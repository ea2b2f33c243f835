"""A dataset file read back gives the records written: a CSV's object and list variables, a
Parquet column of mixed values, a cell longer than ``csv``'s default field limit, a file an
editor saved with a byte order mark."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.records import stored_record
from textnlp import tabular
from textnlp.domain import Record
from textnlp.errors import DatasetError
from textnlp.generation.writers import iter_dataset, read_dataset, write_dataset


def with_variables(rows: list[dict[str, Any]]) -> list[Record]:
    return [
        stored_record(i).model_copy(update={"variables": variables})
        for i, variables in enumerate(rows)
    ]


def test_csv_writes_object_and_list_variables_as_json_and_reads_them_back(
    tmp_path: Path,
) -> None:
    out = tmp_path / "d.csv"
    records = with_variables([{"row": {"body": "it's", "n": 1}, "tags": ["a", "b"], "s": "x"}])
    write_dataset(out, records)
    with out.open(newline="") as handle:
        row = next(csv.DictReader(handle))
    assert json.loads(row["variables.row"]) == {"body": "it's", "n": 1}  # not {'body': ...}
    assert json.loads(row["variables.tags"]) == ["a", "b"]
    assert read_dataset(out)[0].variables == {"row": {"body": "it's", "n": 1},
                                              "tags": ["a", "b"], "s": "x"}  # fmt: skip


def test_a_csv_text_variable_that_looks_like_json_reads_back_as_text(tmp_path: Path) -> None:
    """A recipe column answering ``[1,2]`` read back as a list, and ``--resume`` refused it."""
    out = tmp_path / "d.csv"
    values: list[Any] = ["[1,2]", '{"a": 1}', '"[1,2]"', '""[1]""', '"quoted"', "[x", "{}"]
    values += [[1, 2], {"a": 1}, "plain"]
    write_dataset(out, with_variables([{"v": v} for v in values]))
    assert [r.variables["v"] for r in read_dataset(out)] == values


def test_a_parquet_column_of_mixed_values_reads_back_as_written(tmp_path: Path) -> None:
    out = tmp_path / "d.parquet"
    values: list[Any] = [1, "two", 3.5, True, None, {"a": [1]}]
    write_dataset(out, with_variables([{"v": v} for v in values]))
    assert [r.variables["v"] for r in read_dataset(out)] == values


def test_a_parquet_text_column_that_looks_like_json_stays_text(tmp_path: Path) -> None:
    out = tmp_path / "d.parquet"
    values = ['"quoted"', "1", "[x"]
    write_dataset(out, with_variables([{"v": v} for v in values]))
    assert [r.variables["v"] for r in read_dataset(out)] == values


def test_a_csv_cell_over_the_csv_modules_default_limit_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "d.csv"
    long = "x" * 200_000  # csv's default field limit is 131072
    write_dataset(out, [stored_record(0).model_copy(update={"text": long})])
    assert read_dataset(out)[0].text == long


def test_a_csv_the_csv_module_cannot_read_is_a_dataset_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "d.csv"
    write_dataset(out, [stored_record(0).model_copy(update={"text": "x" * 100})])
    limit = csv.field_size_limit(50)  # a field over it is csv.Error
    try:
        monkeypatch.setattr(tabular, "CSV_FIELD_LIMIT", 50)
        with pytest.raises(DatasetError, match="not valid CSV"):
            list(iter_dataset(out))
    finally:
        csv.field_size_limit(limit)


@pytest.mark.parametrize("name", ["d.csv", "d.jsonl"])
def test_a_dataset_saved_with_a_byte_order_mark_reads(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    write_dataset(out, [stored_record(0), stored_record(1)])
    written = read_dataset(out)
    out.write_bytes(b"\xef\xbb\xbf" + out.read_bytes())
    assert read_dataset(out) == written
