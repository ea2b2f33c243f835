"""Export for training: the directory is read by ``datasets.load_dataset`` itself (offline)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet
import pytest
import yaml
from pydantic import ValidationError

from textnlp.domain import CellProvenance, GenerationParams, Record
from textnlp.domain.records import Provenance
from textnlp.errors import DatasetError, OutputError
from textnlp.generation.card import (
    DatasetCard,
    card_from_records,
    models_of,
    render_card,
    size_category,
    write_card,
)
from textnlp.generation.export import CARD_MARKER, ExportSpec, training_row
from textnlp.generation.sinks import FileSink
from textnlp.generation.writers import (
    check_writable,
    format_of,
    read_dataset,
    write_dataset,
)

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def offline_hf(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network and no ~/.cache: the Hub offline, every cache in a temporary directory."""
    home = tmp_path_factory.mktemp("hf-home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def load(path: Path, cache: Path) -> Any:
    return datasets.load_dataset(str(path), split="train", cache_dir=str(cache / "cache"))


def provenance(index: int, model: str = "smollm2-135m") -> Provenance:
    return Provenance(
        template_id="persona-qa",
        template_version="2",
        model=model,
        params=GenerationParams(max_tokens=60, stop=("\n\n",)),
        seed=1000 + index,
        prompt_tokens=12,
        completion_tokens=30 + index,
        finish_reason="stop",
        latency_s=0.25,
        created_at="2025-01-01T00:00:00+00:00",
        cost_usd=None if index % 2 else 0.0012,
    )


def qa_record(index: int) -> Record:
    cells = None
    if index % 2:
        cell = {"model": "judge", "params": {"max_tokens": 20}, "seed": index, "cost_usd": 0.001}
        cells = {"score": CellProvenance.model_validate(cell)}
    return Record(
        index=index,
        text=f"answer {index}",
        data={
            "question": f"question {index}?",
            "answer": f"answer {index}",
            "score": {"helpfulness": {"score": 4 + index % 2, "reason": "clear"}},
        },
        variables={
            "topic": ["billing", "shipping"][index % 2],
            "age": 20 + index,
            "person": {"name": f"Ann {index}", "city": "Lyon"},
        },
        provenance=provenance(index).model_copy(update={"cells": cells}),
    )


def dialogue_record(index: int) -> Record:
    chat = [
        {"role": "user", "content": f"hello {index}"},
        {"role": "assistant", "content": f"hi {index}"},
        {"role": "user", "content": "bye"},
    ]
    return Record(
        index=index,
        text=f"hi {index}",
        data={"chat": chat},
        variables={"persona": "a pirate"},
        provenance=provenance(index),
    )


def preference_record(index: int) -> Record:
    return Record(
        index=index,
        text=f"good {index}",
        data={"good": f"good {index}", "bad": f"bad {index}"},
        variables={"question": f"why {index}?"},
        provenance=provenance(index, model="gpt-4o-mini"),
    )


# -- the spec --------------------------------------------------------------------------------


def test_spec_references_the_columns_it_names() -> None:
    spec = ExportSpec.model_validate(
        {
            "messages": [
                {"role": "system", "column": "persona"},
                {"role": "user", "column": "question"},
                {"role": "assistant", "column": "answer"},
            ],
            "prompt": "question",
            "chosen": "good",
            "rejected": "bad",
        }
    )
    assert spec.references() == {"persona", "question", "answer", "good", "bad"}
    assert spec.fields() == ["messages", "prompt", "chosen", "rejected"]
    assert ExportSpec(messages="chat").references() == {"chat"}
    assert ExportSpec().references() == set() and ExportSpec().fields() == []


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"prompt": "q", "chosen": "a"}, "rejected missing"),
        ({"messages": [{"role": "robot", "column": "q"}]}, "role"),
        ({"messages": []}, "messages"),
        ({"message": "chat"}, "Extra inputs"),
    ],
)
def test_a_bad_spec_is_refused(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExportSpec.model_validate(section)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(DatasetError, match="record 0 has no column 'nope'"):
        training_row(qa_record(0), ExportSpec(messages="nope"))
    spec = ExportSpec.model_validate({"messages": [{"role": "user", "column": "missing"}]})
    with pytest.raises(DatasetError, match="'missing'"):
        training_row(qa_record(0), spec)


def test_a_column_that_is_not_a_conversation_is_refused() -> None:
    with pytest.raises(DatasetError, match="'question' of record 0 is not a conversation"):
        training_row(qa_record(0), ExportSpec(messages="question"))


def test_a_column_named_like_a_row_field_is_refused() -> None:
    record = qa_record(0).model_copy(update={"variables": {"provenance": "x"}})
    with pytest.raises(DatasetError, match="'provenance'"):
        training_row(record)
    same_text = qa_record(0).model_copy(update={"data": {"text": "answer 0"}})
    assert training_row(same_text)["text"] == "answer 0"


# -- the directory, read by datasets ---------------------------------------------------------


def test_rows_and_columns_come_back_through_load_dataset(tmp_path: Path, offline_hf: Path) -> None:
    out = tmp_path / "qa"
    assert write_dataset(out, [qa_record(i) for i in range(3)]) == 3
    assert (out / "data/train-00000-of-00001.parquet").is_file()
    dataset = load(out, offline_hf)
    assert dataset.num_rows == 3
    assert dataset.column_names == [
        "index",
        "text",
        "topic",
        "age",
        "person",
        "question",
        "answer",
        "score",
        "provenance",
        "_textnlp",
    ]
    row = dataset[1]
    assert row["index"] == 1 and row["text"] == "answer 1" and row["topic"] == "shipping"
    assert row["person"] == {"name": "Ann 1", "city": "Lyon"}
    assert row["score"]["helpfulness"]["score"] == 5
    assert json.loads(row["provenance"])["seed"] == 1001


def test_a_dialogue_recipe_exports_messages(tmp_path: Path, offline_hf: Path) -> None:
    out = tmp_path / "chat"
    write_dataset(out, [dialogue_record(i) for i in range(2)], export=ExportSpec(messages="chat"))
    dataset = load(out, offline_hf)
    assert dataset[0]["messages"] == [
        {"role": "user", "content": "hello 0"},
        {"role": "assistant", "content": "hi 0"},
        {"role": "user", "content": "bye"},
    ]
    assert "chat" in dataset.column_names  # the column itself stays


def test_messages_built_from_columns(tmp_path: Path, offline_hf: Path) -> None:
    spec = ExportSpec.model_validate(
        {
            "messages": [
                {"role": "system", "column": "topic"},
                {"role": "user", "column": "question"},
                {"role": "assistant", "column": "score"},
            ]
        }
    )
    out = tmp_path / "built"
    write_dataset(out, [qa_record(0)], export=spec)
    messages = load(out, offline_hf)[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[1]["content"] == "question 0?"
    # a structured column enters a message as JSON text
    assert json.loads(messages[2]["content"]) == {"helpfulness": {"score": 4, "reason": "clear"}}


def test_a_preference_triple_in_trl_format(tmp_path: Path, offline_hf: Path) -> None:
    spec = ExportSpec(prompt="question", chosen="good", rejected="bad")
    out = tmp_path / "pref"
    write_dataset(out, [preference_record(i) for i in range(2)], export=spec)
    row = load(out, offline_hf)[1]
    assert row["prompt"] == [{"role": "user", "content": "why 1?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "good 1"}]
    assert row["rejected"] == [{"role": "assistant", "content": "bad 1"}]


def test_a_preference_field_named_like_its_column_replaces_it(tmp_path: Path) -> None:
    record = Record(
        index=0,
        text="yes",
        data={"chosen": "yes", "rejected": "no"},
        variables={"prompt": "ok?"},
        provenance=provenance(0),
    )
    row = training_row(record, ExportSpec(prompt="prompt", chosen="chosen", rejected="rejected"))
    assert row["prompt"] == [{"role": "user", "content": "ok?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "yes"}]
    write_dataset(
        tmp_path / "p",
        [record],
        export=ExportSpec(prompt="prompt", chosen="chosen", rejected="rejected"),
    )
    assert read_dataset(tmp_path / "p") == [record]  # the raw columns are kept for resume


def test_heterogeneous_columns_become_json_text(tmp_path: Path, offline_hf: Path) -> None:
    records = [qa_record(0), qa_record(1)]
    records[0] = records[0].model_copy(update={"variables": {"mixed": "text", "empty": {}}})
    records[1] = records[1].model_copy(
        update={"variables": {"mixed": {"an": "object"}, "empty": {}}}
    )
    out = tmp_path / "mixed"
    write_dataset(out, records)
    dataset = load(out, offline_hf)
    assert [json.loads(v) for v in dataset["mixed"]] == ["text", {"an": "object"}]
    assert dataset["empty"] == ["{}", "{}"]
    assert read_dataset(out) == records


def test_the_card_front_matter_parses_as_yaml(tmp_path: Path) -> None:
    out = tmp_path / "qa"
    write_dataset(out, [qa_record(i) for i in range(3)])
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
        }
    ]
    assert meta["tags"] == ["synthetic", "textnlp"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["text-generation"]
    assert CARD_MARKER in text and "persona-qa" in text and "smollm2-135m" in text


def test_write_card_with_a_run_summary(tmp_path: Path, offline_hf: Path) -> None:
    out = tmp_path / "qa"
    write_dataset(out, [qa_record(i) for i in range(3)])
    card = DatasetCard(
        id="persona-qa",
        version="2",
        description="Questions in a sampled person's voice",
        models=["smollm2-135m", "judge-model"],
        requested=5,
        written=3,
        candidates=5,
        rejected={"polite": 1, "good": 1},
        seed=42,
        gate={"status": "pass", "rules": [{"rule": "duplicates", "status": "pass"}]},
        export=ExportSpec(messages="chat"),
    )
    write_card(out, card)
    text = (out / "README.md").read_text()
    assert "| Acceptance rate | 60.0% |" in text and "| `polite` | 1 |" in text
    assert '"status": "pass"' in text and "Questions in a sampled" in text and "`messages`" in text
    assert yaml.safe_load(text.split("---\n")[1])["pretty_name"] == "persona-qa"
    assert load(out, offline_hf).num_rows == 3  # still read as before
    with pytest.raises(OutputError, match="not a textnlp export"):
        write_card(tmp_path, card)


def test_card_helpers() -> None:
    record = qa_record(0)
    cell = {"params": {"max_tokens": 60}, "seed": 1}
    record.provenance.cells = {
        "answer": CellProvenance.model_validate({"model": "cell-model", **cell}),
        "score": CellProvenance.model_validate({"model": "other", **cell}),
    }
    assert models_of([record, preference_record(1)]) == [
        "cell-model",
        "gpt-4o-mini",
        "other",
        "smollm2-135m",
    ]
    assert [size_category(n) for n in (0, 999, 1000, 250_000, 10**13)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
        "n>1T",
    ]
    card = card_from_records([])
    assert card.written == 0 and card.acceptance() is None
    assert render_card(card).startswith("---\n")


# -- atomicity, overwrite, resume ------------------------------------------------------------


def test_an_unrelated_directory_is_refused_and_left_untouched(tmp_path: Path) -> None:
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"meow")
    (mine / "README.md").write_text("my photos\n")
    with pytest.raises(OutputError, match="not empty and holds no textnlp export"):
        check_writable(mine)
    with pytest.raises(OutputError, match="not empty"):
        write_dataset(mine, [qa_record(0)])
    assert sorted(p.name for p in mine.iterdir()) == ["README.md", "cat.jpg"]
    assert (mine / "cat.jpg").read_bytes() == b"meow"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no temporary left


def test_a_previous_export_is_overwritten(tmp_path: Path, offline_hf: Path) -> None:
    out = tmp_path / "qa"
    write_dataset(out, [qa_record(i) for i in range(5)])
    assert check_writable(out) == "hf"
    write_dataset(out, [dialogue_record(i) for i in range(2)], export=ExportSpec(messages="chat"))
    dataset = load(out, offline_hf)
    assert dataset.num_rows == 2 and "messages" in dataset.column_names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qa"]  # old and temporary removed


def test_an_export_holding_a_users_files_is_refused_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "qa"
    write_dataset(out, [qa_record(i) for i in range(2)])
    (out / "notes.txt").write_text("keep")
    (out / "analysis").mkdir()
    (out / "data" / "extra.csv").write_text("a,b")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    listed = r"did not write \(analysis/, notes.txt, data/extra.csv\)"
    with pytest.raises(OutputError, match=listed):
        write_dataset(out, [qa_record(0)])
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    for extra in ("notes.txt", "analysis", "data/extra.csv"):
        target = out / extra
        target.rmdir() if target.is_dir() else target.unlink()
    write_dataset(out, [qa_record(0)])  # only its own files again: replaced
    assert [r.index for r in read_dataset(out)] == [0]


def test_a_failed_write_leaves_the_previous_export(tmp_path: Path) -> None:
    out = tmp_path / "qa"
    write_dataset(out, [qa_record(i) for i in range(2)])
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(DatasetError, match="no column 'chat'"):
        write_dataset(out, [qa_record(0)], export=ExportSpec(messages="chat"))
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qa"]


def test_an_empty_directory_is_used(tmp_path: Path) -> None:
    out = tmp_path / "empty.d"
    out.mkdir()
    assert format_of(out) == "hf" and check_writable(out) == "hf"
    write_dataset(out, [qa_record(0)])
    assert [r.index for r in read_dataset(out)] == [0]


def test_no_records_make_an_export_read_back_empty(tmp_path: Path) -> None:
    write_dataset(tmp_path / "none", [], export=ExportSpec(messages="chat"))
    assert read_dataset(tmp_path / "none") == []


def test_resume_reads_the_records_back_exactly(tmp_path: Path) -> None:
    records = [qa_record(i) for i in range(4)] + [dialogue_record(4), preference_record(5)]
    records.append(qa_record(6).model_copy(update={"data": None, "variables": {}}))
    records.append(
        qa_record(7).model_copy(update={"status": "failed", "error": "no JSON", "text": ""})
    )
    out = tmp_path / "all"
    write_dataset(out, records)
    assert read_dataset(out) == records
    chats = [dialogue_record(i) for i in range(3)]
    write_dataset(out, chats, export=ExportSpec(messages="chat"))
    assert read_dataset(out) == chats
    # what a resume of a finished run does: the sink reads the output back
    assert list(FileSink(out).finished()) == sorted(chats, key=lambda r: r.index)


# -- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("d.jsonl", "jsonl"),
        ("d.CSV", "csv"),
        ("d.parquet", "parquet"),
        ("out", "hf"),
        ("out/", "hf"),
        ("a/b/persona-qa", "hf"),
    ],
)
def test_format_of(path: str, fmt: str) -> None:
    assert format_of(Path(path) if not path.endswith("/") else path) == fmt


def test_an_unknown_extension_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unknown output format '.txt'"):
        check_writable(tmp_path / "d.txt")


def test_a_file_without_extension_is_not_overwritten(tmp_path: Path) -> None:
    existing = tmp_path / "notes"
    existing.write_text("keep")
    with pytest.raises(OutputError, match="is a file"):
        check_writable(existing)
    assert existing.read_text() == "keep"


def test_a_relative_export_path_may_name_new_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_writable(Path("runs/today/qa")) == "hf"
    assert (tmp_path / "runs/today").is_dir() and not (tmp_path / "runs/today/qa").exists()
    write_dataset(Path("runs/today/qa"), [qa_record(0)])
    assert read_dataset(Path("runs/today/qa"))[0] == qa_record(0)
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "qa")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_file_formats_are_unchanged_and_ignore_export(tmp_path: Path, suffix: str) -> None:
    records = [qa_record(i) for i in range(3)]
    plain, shaped = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    write_dataset(plain, records)
    write_dataset(shaped, records, export=ExportSpec(messages="chat"))  # no chat column: ignored
    assert plain.read_bytes() == shaped.read_bytes()
    back = read_dataset(plain)
    assert [r.index for r in back] == [0, 1, 2]
    if suffix == ".jsonl":
        assert back == records
        assert json.loads(plain.read_text().splitlines()[0])["variables"]["topic"] == "billing"
    if suffix == ".csv":
        with plain.open(newline="") as handle:
            header = next(csv.reader(handle))
        assert header[:3] == ["index", "text", "data"]
        assert "variables.topic" in header and "provenance.model" in header
    if suffix != ".jsonl":
        assert back[0].data == records[0].data and back[0].provenance == records[0].provenance


def test_a_variable_of_mixed_types_is_written_to_parquet_as_json_text(tmp_path: Path) -> None:
    # A prompt file's variable: a number on one line, text on the next (Arrow has no one type).
    records = [
        qa_record(0).model_copy(update={"variables": {"x": 1, "same": "a"}}),
        qa_record(1).model_copy(update={"variables": {"x": "str", "same": "b"}}),
    ]
    out = tmp_path / "mixed.parquet"
    write_dataset(out, records)
    back = read_dataset(out)
    assert str(pyarrow.parquet.read_schema(out).field("variables.x").type) == "string"  # JSON
    assert [r.variables for r in back] == [r.variables for r in records]  # read back as written
    assert [r.text for r in back] == [r.text for r in records]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_that_is_no_textnlp_dataset_is_not_read_as_no_records(
    tmp_path: Path, suffix: str
) -> None:
    # A user's CSV resumed onto was read as no records (then replaced), or said "'index'".
    path = tmp_path / f"people{suffix}"
    if suffix == ".csv":
        path.write_text("name,age\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"name": ["bob"]}), path)
    with pytest.raises(DatasetError, match="is not a textnlp dataset"):
        read_dataset(path)
