"""Reading datasets: the generated format, any JSONL/CSV/Parquet, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textnlp.errors import DatasetError
from textnlp.validation import load_rows

GENERATED = {
    "index": 0,
    "status": "ok",
    "text": "Great grinder.",
    "data": None,
    "variables": {"rating": 5, "sentiment": "positive"},
    "provenance": {"template_id": "product-review", "finish_reason": "length"},
}


def test_generated_jsonl_labels_and_finish_reason(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(GENERATED) + "\n\n", encoding="utf-8")
    (row,) = load_rows(path)
    assert row.text == "Great grinder."
    assert row.labels == {"rating": 5, "sentiment": "positive"}
    assert row.finish_reason == "length" and row.template_id == "product-review"


def test_flat_csv_and_dotted_field(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "index,text,data,variables.rating,provenance.finish_reason\n"
        '0,"{""q"": 1}","{""question"": ""Why?"", ""answer"": ""Because""}",4,stop\n',
        encoding="utf-8",
    )
    (row,) = load_rows(path, field="data.answer")
    assert row.text == "Because"
    assert row.labels == {"rating": "4"}
    assert row.finish_reason == "stop"
    assert row.data == {"question": "Why?", "answer": "Because"}


def test_any_parquet_with_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"body": "hello", "label": "greeting", "score": 0.5}]), path
    )
    (row,) = load_rows(path, field="body")
    assert row.text == "hello" and row.labels == {"label": "greeting", "score": 0.5}


def test_records_in_memory() -> None:
    rows = load_rows(["a", {"text": "b", "topic": "x"}])
    assert [r.text for r in rows] == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("d.txt", "hello", "unknown dataset format"),
        ("d.jsonl", "", "is empty"),
        ("d.jsonl", '{"text": "ok"}\n{broken\n', "line 2"),
        ("d.jsonl", '{"body": "no text"}\n', "no field 'text'"),
        ("d.jsonl", "[1, 2]\n", "expected a JSON object"),
        ("d.parquet", "not parquet", "cannot read"),
    ],
)
def test_bad_input(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=fragment):
        load_rows(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_rows(tmp_path / "missing.jsonl")
