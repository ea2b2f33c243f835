"""``bench/validation_measures.py`` judges the targets bench/RESULTS.md states of it (no timing
here: the verdicts are computed from figures given to them)."""

from __future__ import annotations

from typing import Any

from bench.validation_measures import verdicts


def result(speedup: float, *, identical: bool = True) -> dict[str, Any]:
    return {"identical_measures": identical, "measures": {"speedup": speedup, "noise": 0.1}}


def test_the_targets_met() -> None:
    checks = verdicts(result(2.5))
    assert checks == {
        "identical_measures": {"value": True, "ok": True},
        "measures_speedup_ge_1.5": {"value": 2.5, "noise": 0.1, "ok": True},
        "ok": True,
    }


def test_each_miss_is_named_and_fails_the_whole() -> None:
    slow = verdicts(result(1.2))
    assert slow["measures_speedup_ge_1.5"]["ok"] is False and slow["ok"] is False
    different = verdicts(result(3.0, identical=False))
    assert different["identical_measures"]["ok"] is False and different["ok"] is False
