"""A dataset report of mixed-language records is the same, byte for byte, made by the fast
paths (``Measures``' lean figures, the PII fold by table, the split word pattern, ``ngrams`` by
``zip``) and by their plain definitions (``definitions.use_definitions``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.unit.validation.definitions import use_definitions
from tests.unit.validation.mixed_texts import mixed_texts
from tests.unit.validation.report_datasets import review_records, write_jsonl
from textnlp.validation import validate_dataset


def _arguments(folder: Path) -> dict[str, Any]:
    rng = random.Random(8)
    records = review_records(300, seed=8)
    texts = mixed_texts(len(records), seed=8)
    for i, record in enumerate(records):
        # Copies and near copies among the records, some of the seed set's texts among them.
        record["text"] = texts[rng.randrange(i)] if i > 10 and rng.random() < 0.1 else texts[i]
        if i % 37 == 5:
            record["text"] += " " + texts[i - 1].upper()
    write_jsonl(folder / "mixed.jsonl", records)
    write_jsonl(folder / "seed.jsonl", [{"text": t} for t in texts[::9]])
    return {
        "source": folder / "mixed.jsonl",
        "reference": folder / "seed.jsonl",
        "embeddings": False,
        "quality_sample": 40,
        "near_dup_threshold": 0.6,
    }


def test_the_report_is_the_one_the_definitions_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arguments = _arguments(tmp_path)
    fast = validate_dataset(**arguments)
    # The records hold what the report counts: findings of several kinds, copies, leaks.
    assert fast.count == 300 and len(fast.pii.by_kind) == 6
    assert fast.exact_duplicates.clusters and fast.near_duplicates.clusters
    assert fast.leakage is not None and fast.leakage.leaked
    assert {"empty", "truncated", "replacement_char", "repetition"} <= set(fast.examples)
    use_definitions(monkeypatch)
    assert validate_dataset(**arguments).model_dump_json() == fast.model_dump_json()
