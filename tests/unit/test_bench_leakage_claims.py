"""``bench/leakage_containment.py`` checks each claim bench/RESULTS.md makes of it (no timing
here: the claims are judged on figures given to them)."""

from __future__ import annotations

from typing import Any

from bench.leakage_containment import claims


def found(**changes: Any) -> dict[str, Any]:
    base = {"copied": 200, "copied_found": 200, "copied_by_jaccard": 0, "pairs_per_record": 0.9}
    return base | changes


def test_every_claim_holds() -> None:
    checks = claims(found(), 0.39, [0.4, 0.39, 0.33], 0.19)
    assert checks["ok"] is True
    assert checks["every_whole_copy_found"] == {"value": "200/200", "ok": True}


def test_each_claim_fails_on_its_own() -> None:
    assert (
        claims(found(copied_found=199), 0.39, [0.39], None)["every_whole_copy_found"]["ok"] is False
    )
    jaccard = claims(found(copied_by_jaccard=3), 0.39, [0.39], None)
    assert jaccard["no_whole_copy_by_jaccard_alone"]["ok"] is False
    assert jaccard["ok"] is False
    assert claims(found(pairs_per_record=2.6), 0.39, [0.39], None)["ok"] is False


def test_the_containment_step_is_cheaper_only_if_it_is_in_every_round() -> None:
    assert claims(found(), 0.5, [0.78, 0.42, 0.56], 0.56)["containment_step_cheaper"]["ok"]
    mixed = claims(found(), 0.9, [0.8, 0.9, 1.05], 0.25)
    assert mixed["containment_step_cheaper"]["ok"] is False
    assert mixed["ok"] is False
