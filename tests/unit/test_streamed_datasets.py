"""Datasets written and read as streams: a flat table's rows wait on disk in chunks
(``row_spool``), so its Parquet types must come out as if the whole column had been one array,
and a run's end writes its file from the journal without holding the records."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.support.records import stored_record
from textnlp.domain import Record
from textnlp.errors import OutputError
from textnlp.generation import row_spool
from textnlp.generation.journal import RunJournal, journal_path
from textnlp.generation.sinks import FileSink
from textnlp.generation.writers import iter_dataset, read_dataset, write_dataset


def with_variables(rows: list[dict[str, Any]]) -> list[Record]:
    return [
        stored_record(i).model_copy(update={"variables": variables})
        for i, variables in enumerate(rows)
    ]


#: Each column changes its values' type from the first chunk (two rows) to the next.
CHANGING: list[dict[str, Any]] = [
    {"n": 1, "mixed": 1, "obj": {"a": 1}, "late": None},
    {"n": 2, "mixed": 2, "obj": {"a": 2}, "late": None},
    {"n": 2.5, "mixed": "x", "obj": {"b": "x"}, "late": "y"},
    {"n": 3, "mixed": None, "obj": None, "late": "z"},
    {"n": 4},
]


def table(path: Path) -> tuple[Any, list[dict[str, Any]]]:
    read = pq.read_table(path)
    return read.schema, read.to_pylist()


def test_a_chunked_parquet_is_typed_as_if_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = with_variables(CHANGING)
    write_dataset(tmp_path / "whole.parquet", records)
    monkeypatch.setattr(row_spool, "CHUNK_ROWS", 2)
    write_dataset(tmp_path / "chunked.parquet", iter(records))
    assert pq.ParquetFile(tmp_path / "chunked.parquet").num_row_groups == 3
    assert table(tmp_path / "chunked.parquet") == table(tmp_path / "whole.parquet")
    schema, rows = table(tmp_path / "chunked.parquet")
    assert str(schema.field("variables.n").type) == "double"  # an integer chunk, then a float
    assert str(schema.field("variables.mixed").type) == "string"  # no one type: JSON text
    assert [r["variables.mixed"] for r in rows] == ["1", "2", '"x"', None, None]
    assert str(schema.field("variables.obj").type) == "struct<a: int64, b: string>"
    assert [r["variables.late"] for r in rows] == [None, None, "y", "z", None]


def test_a_chunk_of_empty_objects_takes_its_fields_from_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chunk of only ``{}`` infers ``struct<>``, which Parquet cannot store: judged alone, it
    # made the whole column JSON text, where one array of every value is a struct.
    records = with_variables(
        [
            {"obj": {}, "nested": {"a": {}}, "items": [{}]},
            {"obj": {}, "nested": {"a": {}}, "items": [{}]},
            {"obj": {"a": 1}, "nested": {"a": {"b": 1}}, "items": [{"k": 1}]},
        ]
    )
    write_dataset(tmp_path / "whole.parquet", records)
    monkeypatch.setattr(row_spool, "CHUNK_ROWS", 2)
    write_dataset(tmp_path / "chunked.parquet", records)
    assert table(tmp_path / "chunked.parquet") == table(tmp_path / "whole.parquet")
    schema, _ = table(tmp_path / "chunked.parquet")
    assert str(schema.field("variables.obj").type) == "struct<a: int64>"
    assert str(schema.field("variables.items").type.value_type) == "struct<k: int64>"


def test_a_merged_type_a_later_chunk_does_not_fit_becomes_json_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # int64 then uint64 merge to int64, which 2**64 - 1 does not fit: the column is rewritten
    # as JSON text rather than failing the write.
    monkeypatch.setattr(row_spool, "CHUNK_ROWS", 1)
    out = tmp_path / "big.parquet"
    write_dataset(out, with_variables([{"big": 1}, {"big": 2**64 - 1}]))
    _, rows = table(out)
    assert [r["variables.big"] for r in rows] == ["1", str(2**64 - 1)]


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.parquet", "d"])
def test_every_format_takes_a_one_shot_iterator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(row_spool, "CHUNK_ROWS", 3)
    records = [stored_record(i) for i in range(10)]
    produced: list[int] = []

    def one_by_one() -> Iterator[Record]:
        for record in records:
            produced.append(record.index)
            yield record

    assert write_dataset(tmp_path / name, one_by_one()) == 10
    assert produced == list(range(10))  # read once
    assert read_dataset(tmp_path / name) == records
    assert list(iter_dataset(tmp_path / name)) == records


def test_an_empty_table_keeps_its_columns(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    for name in ("e.csv", "e.parquet"):
        assert write_dataset(tmp_path / name, iter(())) == 0
        assert read_dataset(tmp_path / name) == []
    header = (tmp_path / "e.csv").read_text().splitlines()
    columns = pq.read_schema(tmp_path / "e.parquet").names
    assert len(header) == 1 and header[0].split(",") == columns
    assert {"index", "text"} <= set(columns)


def test_a_runs_end_writes_the_last_write_of_each_index_in_order(tmp_path: Path) -> None:
    out, rejects = tmp_path / "o.jsonl", tmp_path / "rejects.jsonl"
    journal = RunJournal(journal_path(out))
    journal.open(fresh=True)
    for record in [
        stored_record(2),
        stored_record(0, "failed"),
        stored_record(1),
        stored_record(0),  # the index written again: the last write wins
        stored_record(3, "failed"),
    ]:
        journal.append(record)
    journal.close()
    with journal.path.open("a") as handle:
        handle.write('{"index": 4, "te')  # a torn last line is cut
    with FileSink(out, rejects=rejects) as sink:
        assert [r.index for r in sink.finished()] == [0, 1, 2, 3]
        sink.end(3, complete=False)
    assert [(r.index, r.status) for r in read_dataset(out)] == [(0, "ok"), (1, "ok"), (2, "ok")]
    assert [(r.index, r.status) for r in read_dataset(rejects)] == [(3, "failed")]
    assert journal.path.exists()  # not complete: kept for a resume


def test_a_stopped_run_with_nothing_accepted_leaves_the_file(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text("mine\n")
    journal = RunJournal(journal_path(out))
    journal.open(fresh=True)
    journal.append(stored_record(0, "failed"))
    journal.close()
    with FileSink(out) as sink:
        sink.end(2, complete=False)
    assert out.read_text() == "mine\n"


@pytest.mark.parametrize("name", ["d.csv", "d.parquet", "d"])
def test_a_full_disk_under_the_spool_is_an_output_error_that_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    out = tmp_path / name
    write_dataset(out, [stored_record(0)])
    before = files(tmp_path)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("textnlp.generation.row_spool.pickle.dump", full)
    with pytest.raises(OutputError, match=f"cannot write {out}: No space left on device"):
        write_dataset(out, [stored_record(i) for i in range(3)])
    assert files(tmp_path) == before


def files(root: Path) -> list[tuple[Path, bytes]]:
    return sorted((p.relative_to(root), p.read_bytes()) for p in root.rglob("*") if p.is_file())
