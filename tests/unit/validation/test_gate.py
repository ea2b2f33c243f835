"""Gate files and rule evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from textnlp.errors import ConfigError
from textnlp.validation import Gate, evaluate, load_gate


def test_load_gate_overrides_defaults_and_null_disables(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("max_pii_rate: 0.0\nmin_semantic_diversity: null\n", encoding="utf-8")
    gate = load_gate(path)
    assert gate.max_pii_rate == 0.0
    assert gate.min_semantic_diversity is None
    assert gate.max_exact_duplicate_rate == Gate().max_exact_duplicate_rate


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("max_pii_rate: [1, 2", "not valid YAML"),
        ("- 1\n- 2\n", "mapping"),
        ("max_pi_rate: 0.1\n", "known rules"),
        ("max_pii_rate: 2\n", "max_pii_rate"),
        ("max_pii_rate: lots\n", "max_pii_rate"),
        ("min_records: " + "[" * 5000, "nested too deep"),  # PyYAML's RecursionError
    ],
)
def test_malformed_gate_is_config_error(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment) as info:
        load_gate(path)
    assert info.value.user_error and "\n" not in info.value.message


def test_missing_gate_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_gate(tmp_path / "nope.yaml")


def test_evaluate_pass_fail_skipped() -> None:
    gate = Gate(max_pii_rate=0.1, min_lexical_diversity=0.5)
    result = evaluate(gate, {"pii_rate": 0.1, "lexical_diversity": 0.4, "count": 10})
    status = {r.rule: r.status for r in result.rules}
    assert status["max_pii_rate"] == "pass"  # equal to the threshold passes
    assert status["min_lexical_diversity"] == "fail"
    assert status["max_leakage_rate"] == "skipped"
    assert not result.passed
    assert evaluate(Gate(min_lexical_diversity=None), {"pii_rate": 0.0}).passed


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("max_pii_rate: true\n", "max_pii_rate: Input should be a valid number"),
        ("max_pii_rate: '0.5'\n", "max_pii_rate: Input should be a valid number"),
        ("max_pii_rate: .nan\n", "max_pii_rate: Input should be a finite number"),
        ("min_records: .inf\n", "min_records: Input should be a finite number"),
    ],
)
def test_gate_thresholds_are_strict_finite_numbers(
    tmp_path: Path, content: str, fragment: str
) -> None:
    """``true`` was read as 1.0 (a gate letting every record with PII pass), NaN was refused
    as "less than or equal to 1"."""
    path = tmp_path / "gate.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment):
        load_gate(path)


def test_gate_thresholds_in_exponent_notation_are_numbers(tmp_path: Path) -> None:
    """YAML 1.2 floats: PyYAML (YAML 1.1) read ``1e-3`` as a string, refused as no number."""
    path = tmp_path / "gate.yaml"
    path.write_text("max_pii_rate: 1e-3\nmax_leakage_rate: 5E-2\nmin_records: 1\n")
    gate = load_gate(path)
    assert (gate.max_pii_rate, gate.max_leakage_rate, gate.min_records) == (0.001, 0.05, 1)
    path.write_text("max_pii_rate: '1e-3'\n")  # quoted: a string still
    with pytest.raises(ConfigError, match="valid number"):
        load_gate(path)


def test_gate_model_refuses_a_bool_threshold() -> None:
    with pytest.raises(ValidationError, match="valid number"):
        Gate(max_pii_rate=True)
    assert Gate(max_pii_rate=1).max_pii_rate == 1.0  # an int is a number


def test_gate_file_giving_a_rule_twice_is_refused(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys silently: a rule tightened, then loosened below."""
    path = tmp_path / "gate.yaml"
    path.write_text("max_pii_rate: 0.0\nmin_records: 5\nmax_pii_rate: 1.0\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"'max_pii_rate' is given twice \(line 3, column 1\)"
    ) as info:
        load_gate(path)
    assert "\n" not in info.value.message


def test_gate_file_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """A key given by a ``<<`` merge and again beside it is YAML's override, not a repeat."""
    path = tmp_path / "gate.yaml"
    path.write_text(
        "<<: {max_pii_rate: 0.5, max_empty_rate: 0.3}\nmax_pii_rate: 0.2\n", encoding="utf-8"
    )
    gate = load_gate(path)
    assert gate.max_pii_rate == 0.2 and gate.max_empty_rate == 0.3


def test_the_records_a_generation_was_asked_for_count_those_that_failed() -> None:
    """A failed record is in no dataset file: the gate learns of it from ``requested``."""
    from textnlp.validation.report import validate_dataset

    texts = [f"a distinct sentence number {i} about something" for i in range(3)]
    half = validate_dataset(texts, requested=6, embeddings=False)
    assert half.metrics()["missing_rate"] == 0.5
    (rule,) = [r for r in half.gate.rules if r.rule == "max_missing_rate"]
    assert rule.status == "fail" and not half.passed
    whole = validate_dataset(texts, requested=3, embeddings=False)
    assert whole.metrics()["missing_rate"] == 0.0
    unknown = validate_dataset(texts, embeddings=False)  # a file: its run is not known
    (rule,) = [r for r in unknown.gate.rules if r.rule == "max_missing_rate"]
    assert rule.status == "skipped" and rule.value is None
