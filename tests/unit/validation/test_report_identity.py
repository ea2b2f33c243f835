"""The dataset report is the same, byte for byte, as the one made before rows were streamed.

``golden/*.json`` were written by ``validate_dataset`` as it was when it held every row, every
``TextQuality`` and a datasketch index in memory; the report that streams its rows and keeps a
few numbers per record must give the same JSON for the same inputs (JSONL, CSV, Parquet and
records in memory; duplicates, near duplicates, PII, JSON with a schema, labels, data fields,
empty and truncated texts, a leakage reference without embeddings).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.validation.report_datasets import (
    cluster_records,
    flat_rows,
    qa_records,
    review_records,
    write_csv,
    write_jsonl,
    write_parquet,
)
from textnlp.validation import validate_dataset

GOLDEN = Path(__file__).with_name("golden")

#: A case writes its dataset into a folder and gives ``validate_dataset``'s arguments (paths
#: relative to that folder, so that the report's ``source`` is the same wherever it runs);
#: ``scale`` multiplies its size (1 here; larger for a one-off comparison).
Case = Callable[[Path, int], dict[str, Any]]


def _reviews_jsonl(folder: Path, scale: int) -> dict[str, Any]:
    write_jsonl(folder / "reviews.jsonl", review_records(400 * scale, seed=1))
    return {"source": "reviews.jsonl"}


def _reviews_csv(folder: Path, scale: int) -> dict[str, Any]:
    write_csv(folder / "reviews.csv", flat_rows(review_records(300 * scale, seed=2)))
    return {"source": "reviews.csv", "near_dup_threshold": 0.6, "quality_sample": 50}


def _reviews_parquet(folder: Path, scale: int) -> dict[str, Any]:
    rows = flat_rows(review_records(300 * scale, seed=3, labels=False))
    write_parquet(folder / "reviews.parquet", [{"body": r.pop("text"), **r} for r in rows])
    return {"source": "reviews.parquet", "field": "body", "quality_sample": 50}


def _qa_jsonl(folder: Path, scale: int) -> dict[str, Any]:
    write_jsonl(folder / "qa.jsonl", qa_records(300 * scale, seed=4))
    return {"source": "qa.jsonl", "quality_sample": 50}


def _qa_answers(folder: Path, scale: int) -> dict[str, Any]:
    records = [r for r in qa_records(300 * scale, seed=4) if "answer" in (r["data"] or {})]
    write_jsonl(folder / "qa.jsonl", records)
    return {"source": "qa.jsonl", "field": "data.answer", "quality_sample": 50}


def _qa_records_own_schema(folder: Path, scale: int) -> dict[str, Any]:
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"minLength": 3}}}
    return {
        "source": qa_records(200 * scale, seed=5),
        "json_schema": schema,
        "gate": {"max_json_invalid_rate": 0.01, "max_pii_rate": None},
        "quality_sample": 50,
        "sample_size": 100,
    }


def _leakage(folder: Path, scale: int) -> dict[str, Any]:
    records = review_records(300 * scale, seed=6)
    reference = [{"text": r["text"]} for r in records[::7]]
    reference += [{"text": t} for t in cluster_records(40, seed=6)]
    write_jsonl(folder / "reviews.jsonl", records)
    write_jsonl(folder / "seed.jsonl", reference)
    return {"source": "reviews.jsonl", "reference": "seed.jsonl", "quality_sample": 50}


def _clusters(folder: Path, scale: int) -> dict[str, Any]:
    return {"source": cluster_records(300 * scale, seed=7), "near_dup_threshold": 0.7}


def _clusters_strict(folder: Path, scale: int) -> dict[str, Any]:
    # Above ~0.99 the LSH is two bands of half the permutations.
    return {"source": cluster_records(300 * scale, seed=8), "near_dup_threshold": 0.995}


def _mixed_templates(folder: Path, scale: int) -> dict[str, Any]:
    records = review_records(150 * scale, seed=9) + qa_records(150 * scale, seed=9)
    write_jsonl(folder / "mixed.jsonl", records)
    return {"source": "mixed.jsonl", "quality_sample": 50, "json_schema": False}


CASES: dict[str, Case] = {
    "reviews_jsonl": _reviews_jsonl,
    "reviews_csv": _reviews_csv,
    "reviews_parquet": _reviews_parquet,
    "qa_jsonl": _qa_jsonl,
    "qa_answers": _qa_answers,
    "qa_records_own_schema": _qa_records_own_schema,
    "leakage": _leakage,
    "clusters": _clusters,
    "clusters_strict": _clusters_strict,
    "mixed_templates": _mixed_templates,
}


def report_json(case: str, folder: Path, scale: int = 1) -> str:
    """The report of ``case`` (its files written into ``folder``, the current directory)."""
    arguments = CASES[case](folder, scale)
    return validate_dataset(embeddings=False, **arguments).model_dump_json(indent=1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_is_the_golden_one(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = (GOLDEN / f"{case}.json").read_text(encoding="utf-8")
    assert report_json(case, tmp_path) == expected
