"""Gate files and rule evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

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
