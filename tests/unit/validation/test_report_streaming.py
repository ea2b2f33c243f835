"""The report reads rows as it goes and keeps a few numbers per record, not its rows."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.unit.validation.report_datasets import (
    flat_rows,
    review_records,
    write_jsonl,
    write_parquet,
)
from textnlp import tabular
from textnlp.errors import DatasetError
from textnlp.validation.loader import iter_rows, read_file
from textnlp.validation.measures import measure
from textnlp.validation.stats import field_stats


def test_rows_are_read_as_they_are_consumed(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}\n{broken\n', encoding="utf-8")
    rows = iter_rows(path)
    assert next(rows).text == "one"  # the broken line is not read yet
    assert next(rows).text == "two"
    with pytest.raises(DatasetError, match="line 3"):
        next(rows)


def test_an_empty_dataset_is_refused_when_read(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="is empty"):
        list(iter_rows(path))
    with pytest.raises(DatasetError, match="the reference records is empty"):
        list(iter_rows([], noun="reference"))


def test_a_missing_reference_file_is_refused_before_the_dataset_is_read(tmp_path: Path) -> None:
    from textnlp.validation import validate_dataset

    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "one"}\n{broken\n', encoding="utf-8")  # read last: not reached
    with pytest.raises(DatasetError, match="reference .*missing.jsonl does not exist"):
        validate_dataset(path, reference=tmp_path / "missing.jsonl", embeddings=False)


def test_parquet_is_read_batch_by_batch_with_the_whole_tables_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_parquet(tmp_path / "d.parquet", flat_rows(review_records(150, seed=1)))
    monkeypatch.setattr(tabular, "PARQUET_BATCH", 10)
    assert read_file(path) == pq.read_table(path).to_pylist()


def test_field_statistics_kept_as_they_come() -> None:
    items = [
        {
            "few": i % 3,
            "number": i / 7,
            "word": f"w{i}",
            "mixed": i if i < 60 else "late text",
            "nested": {"a": i},
            "none": None,
        }
        for i in range(100)
    ]
    stats = {s.name: s for s in field_stats(items)}
    assert list(stats) == ["few", "number", "word", "mixed"]  # no scalar: no statistics
    assert stats["few"].kind == "categorical"
    assert stats["few"].distribution == {"0": 34, "1": 33, "2": 33}
    assert stats["number"].kind == "numeric" and stats["number"].numeric is not None
    assert stats["number"].numeric.max == pytest.approx(99 / 7)
    assert stats["word"].kind == "text" and stats["word"].present == 100
    assert stats["word"].mean_length == sum(len(f"w{i}") for i in range(100)) / 100
    # More than 50 values, and a text after the numbers: a text field.
    assert stats["mixed"].kind == "text"


def test_a_record_costs_a_few_dozen_bytes_beside_its_text(tmp_path: Path) -> None:
    """Rows, ``TextQuality``s and labels are not kept: ~9 KB a record before, ~80 bytes now
    (typed arrays, the list of texts, 8 bytes for each numeric label)."""
    n = 2000
    path = write_jsonl(tmp_path / "d.jsonl", review_records(n, seed=2))
    warm_up = write_jsonl(tmp_path / "w.jsonl", review_records(50, seed=3))
    measure(iter_rows(warm_up))  # lazy imports and caches, not measured
    tracemalloc.start()
    try:
        measures = measure(iter_rows(path))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    texts = sum(sys.getsizeof(text) for text in measures.texts)
    assert len(measures) == n
    assert (held - texts) / n < 200
    labels = {s.name for s in measures.labels.stats()}
    assert {"rating", "score", "title"} <= labels


def test_the_report_shows_the_texts_it_measured_again(tmp_path: Path) -> None:
    """What an example says of a record (its masked text, its PII kinds) is measured again
    when shown, from the record's text."""
    from textnlp.validation import validate_dataset

    records = [{"text": f"Review number {i} of a fine kettle that boils fast."} for i in range(9)]
    records[4] = {"text": "Mail me at jo@example.com or call +44 20 7946 0123."}
    path = write_jsonl(tmp_path / "d.jsonl", records)
    report = validate_dataset(path, embeddings=False)
    (example,) = report.examples["pii"]
    assert example.index == 4 and example.detail == "email, phone"
    assert example.text == "Mail me at [EMAIL] or call [PHONE]."
    assert json.loads(report.model_dump_json())["pii"]["by_kind"] == {"email": 1, "phone": 1}
