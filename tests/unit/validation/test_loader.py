"""Reading datasets: the generated format, any JSONL/CSV/Parquet, bad input."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.records import stored_record
from textnlp.errors import DatasetError
from textnlp.generation.writers import write_dataset
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


# Hostile files: each is refused with a DatasetError naming the record, never a traceback.


def test_a_csv_row_with_more_fields_than_the_header_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\nfine,a\nhello world,a,EXTRA\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d\.csv, row 2 \(line 3\): 3 fields, the header has 2"):
        load_rows(path)


def test_a_csv_quote_left_open_is_refused_but_quoted_line_breaks_read(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text\nok\n"never closed\nmore text\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d\.csv, line 3: cannot read the CSV record"):
        load_rows(path)
    path.write_text('text\n"two\nlines, ""quoted"""\n', encoding="utf-8")
    assert [r.text for r in load_rows(path)] == ['two\nlines, "quoted"']


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.jsonl", '{"text": "hello"}\n'),
        ("d.json", '[{"text": "hello"}]'),
        ("d.csv", "text\nhello\n"),
    ],
)
def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8-sig")
    (row,) = load_rows(path)
    assert row.text == "hello"


DEEP = "[" * 100_000 + "]" * 100_000
DEEP_CELL = "[" * 5_000 + "]" * 5_000  # past the parser's recursion, within a CSV field


@pytest.mark.parametrize(
    ("name", "content", "field", "fragment"),
    [
        ("d.jsonl", '{"text": ' + DEEP + "}\n", "text", r"d\.jsonl, line 1: JSON nested"),
        ("d.json", '[{"text": ' + DEEP + "}]", "text", r"d\.json: JSON nested deeper than 64"),
        # JSON text in CSV cells: the data column, a dotted field through a JSON column
        ("d.csv", f"text,data\nhi,{DEEP_CELL}\n", "text", "record 1: JSON nested deeper"),
        ("d.csv", f'body\n"{{""x"": {DEEP_CELL}}}"\n', "body.x", "record 1: JSON nested"),
        (
            "d.jsonl",
            '{"text": "hi", "extra": ' + "[" * 70 + "]" * 70 + "}\n",
            "text",
            "record 1: the record is nested deeper than 64 levels",
        ),
    ],
)
def test_json_nested_too_deep_is_refused(
    tmp_path: Path, name: str, content: str, field: str, fragment: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=fragment):
        load_rows(path, field=field)


def test_records_in_memory_that_cycle_are_refused_not_walked_forever() -> None:
    record: dict[str, object] = {"text": "hi"}
    shared: list[object] = []
    shared.extend([shared, shared])  # a cycle that doubles at every level
    record["extra"] = shared
    with pytest.raises(DatasetError, match="nested deeper than 64 levels"):
        load_rows([record])


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"text": "abc \\ud800 def"}', "field 'text' is not valid Unicode"),
        ('{"text": "abc", "topic": ["\\udfff"]}', "field 'topic.0' is not valid Unicode"),
        ('{"text": "abc", "\\ud800k": 1}', "field name .* is not valid Unicode"),
    ],
)
def test_a_lone_surrogate_is_refused_at_load(tmp_path: Path, line: str, fragment: str) -> None:
    # The tokeniser raised TypeError on such a text, the report's writers UnicodeEncodeError.
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d\.jsonl, record 2: " + fragment):
        load_rows(path)
    with pytest.raises(DatasetError, match="the records, record 1"):
        load_rows(["abc \ud800"])


def test_an_integer_no_float_holds_is_a_label_shown_as_text(tmp_path: Path) -> None:
    from textnlp.validation.stats import field_stats

    path = tmp_path / "d.jsonl"
    big = 10**400
    path.write_text(
        json.dumps({"text": "hi", "label": big, "small": 3, "data": {"n": big}}) + "\n",
        encoding="utf-8",
    )
    (row,) = load_rows(path)
    assert row.labels == {"label": str(big), "small": 3}
    assert row.data == {"n": str(big)}
    assert field_stats([row.labels])[0].distribution == {str(big): 1}  # OverflowError before


@pytest.mark.parametrize(
    ("array", "kind"),
    [
        (pa.array([b"\x00\x01"], pa.binary()), "binary"),
        (pa.array([datetime.date(2024, 1, 2)]), "date"),
    ],
)
def test_a_parquet_text_column_that_is_not_text_is_refused(
    tmp_path: Path, array: pa.Array, kind: str
) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": array}), path)
    with pytest.raises(DatasetError, match=f"record 1: field 'text' holds {kind}, not text"):
        load_rows(path)


def test_a_reference_is_named_a_reference(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"^reference .*missing\.jsonl does not exist$"):
        load_rows(tmp_path / "missing.jsonl", noun="reference")
    seed = tmp_path / "seed.jsonl"
    seed.write_text('{"text": "a seed"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="choose the reference's field with --reference-field"):
        load_rows(seed, field="data.answer", noun="reference")


@pytest.mark.parametrize("damage", ["data", "meta"])
def test_a_damaged_export_directory_is_a_dataset_error(tmp_path: Path, damage: str) -> None:
    # It escaped as ArrowInvalid or JSONDecodeError: a traceback, not one line and exit 2.
    out = tmp_path / "ds"
    write_dataset(out, [stored_record(i) for i in range(3)])
    data = next((out / "data").glob("*.parquet"))
    if damage == "data":
        data.write_bytes(b"PAR1junk")
    else:
        table = pq.read_table(data)
        broken = pa.array(["{not json"] * table.num_rows)
        pq.write_table(
            table.set_column(table.schema.get_field_index("_textnlp"), "_textnlp", broken), data
        )
    with pytest.raises(DatasetError, match=f"cannot read dataset {out}"):
        load_rows(out)
