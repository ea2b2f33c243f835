"""``validate_dataset``'s arguments: a wrong one is refused naming it, never a TypeError from
inside a metric or a report of the wrong thing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from textnlp.errors import DatasetError, InvalidParameter
from textnlp.validation import Gate, validate_dataset

TEXTS = ["The kettle boils fast and quietly.", "A lamp with a warm and even light."]


def _validate(source: Any = TEXTS, **kwargs: Any) -> Any:
    return validate_dataset(source, **{"embeddings": False, **kwargs})


@pytest.mark.parametrize(
    ("source", "kwargs", "parameter", "fragment"),
    [
        ({"text": "a"}, {}, "source", "put a single record in a list"),
        (None, {}, "source", "a dataset file's path or a list of records"),
        (5, {}, "source", "a dataset file's path or a list of records"),
        (b"a.jsonl", {}, "source", "a dataset file's path or a list of records"),
        (TEXTS, {"reference": {"text": "a"}}, "reference", "single record"),
        (TEXTS, {"field": 5}, "field", "valid string"),
        (TEXTS, {"field": None}, "field", "valid string"),
        (TEXTS, {"reference_field": ""}, "reference_field", "at least 1 character"),
        (TEXTS, {"gate": 5}, "gate", "a mapping of rule: threshold"),
        (TEXTS, {"gate": {"max_pii_rate": 5}}, "gate", "max_pii_rate: Input should be less"),
        (TEXTS, {"gate": {"max_pii_rate": True}}, "gate", "max_pii_rate: Input should be a"),
        (TEXTS, {"gate": {"max_pi_rate": 0.1}}, "gate", "max_pi_rate: Extra inputs"),
        (TEXTS, {"near_dup_threshold": "0.5"}, "near_dup_threshold", "valid number"),
        (TEXTS, {"near_dup_threshold": True}, "near_dup_threshold", "valid number"),
        (TEXTS, {"leakage_ngram_threshold": math.nan}, "leakage_ngram_threshold", "finite"),
        (TEXTS, {"leakage_ngram_threshold": 2}, "leakage_ngram_threshold", "less than or equal"),
        (TEXTS, {"leakage_ngram_threshold": -1}, "leakage_ngram_threshold", "greater than 0"),
        (TEXTS, {"leakage_embedding_threshold": 1.5}, "leakage_embedding_threshold", "less"),
        (TEXTS, {"leakage_containment_threshold": 0}, "leakage_containment_threshold", "greater"),
        (TEXTS, {"leakage_containment_threshold": 1.2}, "leakage_containment_threshold", "less"),
        (
            TEXTS,
            {"leakage_containment_threshold": "0.8"},
            "leakage_containment_threshold",
            "number",
        ),
        (TEXTS, {"sample_size": -1}, "sample_size", "greater than or equal to 1"),
        (TEXTS, {"quality_sample": -5}, "quality_sample", "greater than or equal to 1"),
        (TEXTS, {"quality_sample": 2.0}, "quality_sample", "valid integer"),
        (TEXTS, {"json_schema": [1]}, "json_schema", "valid dictionary"),
        (TEXTS, {"json_schema": {"type": "nonsense"}}, "json_schema", "'nonsense' is not valid"),
        (TEXTS, {"embeddings": "no"}, "embeddings", "valid boolean"),
        (TEXTS, {"embedder": 5, "embeddings": True}, "embedder", "instance of Embedder"),
    ],
)
def test_a_wrong_argument_is_refused_naming_it(
    source: Any, kwargs: dict[str, Any], parameter: str, fragment: str
) -> None:
    with pytest.raises(InvalidParameter, match=fragment) as info:
        _validate(source, **kwargs)
    assert info.value.details["parameter"] == parameter
    assert info.value.message.startswith(parameter) and "\n" not in info.value.message


@pytest.mark.parametrize(
    "record",
    [
        {1: "x", "text": "a text"},
        {"text": "a text", "variables": {"k": 1}, ("a", "b"): 2},
    ],
)
def test_a_record_with_a_key_that_is_not_a_string_is_a_dataset_error(
    record: dict[Any, Any],
) -> None:
    """Its labels were read with ``key.startswith``: an AttributeError."""
    with pytest.raises(DatasetError, match=r"the records, record 2: key .* is not a string"):
        _validate([TEXTS[0], record])
    with pytest.raises(DatasetError, match="the reference records, record 2: key"):
        _validate(reference=[TEXTS[0], record])


@pytest.mark.parametrize("value", [b"bytes", object()])
def test_a_record_whose_text_is_not_text_is_a_dataset_error(value: object) -> None:
    with pytest.raises(DatasetError, match="the records, record 2: field 'text'"):
        _validate([TEXTS[0], {"text": value}])


def test_good_arguments_of_every_accepted_shape() -> None:
    """Tuples of records, a gate as a mapping, a Path, ints for float thresholds."""
    report = _validate(tuple(TEXTS), gate={"max_pii_rate": 1}, near_dup_threshold=1)
    assert report.count == 2 and report.gate.rules[0].rule == "min_records"
    rule = next(r for r in report.gate.rules if r.rule == "max_pii_rate")
    assert rule.threshold == 1.0
    assert _validate(gate=Gate(max_pii_rate=0.5)).count == 2
    assert _validate([{"text": {"answer": 42}, "when": object()}]).count == 1  # labels skip it


def test_a_gate_path_is_read(tmp_path: Path) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text("min_records: 3\n", encoding="utf-8")
    assert not _validate(gate=gate).passed
    assert not _validate(gate=str(gate)).passed


def test_a_gate_changed_after_it_was_built_is_checked_again() -> None:
    gate = Gate()
    gate.max_pii_rate = True  # type: ignore[assignment]  # pydantic does not check assignments
    with pytest.raises(InvalidParameter, match="gate: max_pii_rate: Input should be a valid"):
        _validate(gate=gate)
