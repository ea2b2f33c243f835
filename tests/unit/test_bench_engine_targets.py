"""``bench/engine.py`` judges issue 18's targets on the figures it measured (no timing here:
the verdicts are computed from runs given to them)."""

from __future__ import annotations

from typing import Any

from bench.engine import verdicts


def run(level: int, ours: float, server: float | None, raw: float | None) -> dict[str, Any]:
    figures: dict[str, Any] = {"concurrency": level, "tokens_per_s": ours, "spread": 0.05}
    for anchor, theirs in (("llama_server", server), ("raw_decode", raw)):
        if theirs is not None:
            figures[anchor] = {"tokens_per_s": theirs, "spread": 0.1}
            figures[f"ratio_vs_{anchor}"] = round(ours / theirs, 3)
    return figures


def test_met_missed_and_whether_the_noise_decides() -> None:
    checks = verdicts([run(1, 170.0, 162.0, 189.0), run(32, 631.0, 600.0, 651.0)])
    assert checks["vs_llama_server_at_1_ge_1.0"] == {
        "value": 1.049, "noise": 0.1, "ok": True, "decided": False,
    }  # fmt: skip
    assert checks["vs_llama_server_at_32_ge_1.2"]["ok"] is False
    assert checks["vs_llama_server_at_32_ge_1.2"]["decided"] is True  # 1.052 is 12% short
    assert checks["vs_raw_decode_at_32_ge_0.95"]["ok"] is True
    assert checks["ok"] is False


def test_an_anchor_not_measured_is_not_judged() -> None:
    checks = verdicts([run(1, 80.0, None, None), run(8, 230.0, 240.0, 250.0)])
    assert checks["vs_llama_server_at_1_ge_1.0"]["ok"] is None
    assert checks["vs_llama_server_at_32_ge_1.2"]["ok"] is None
    assert checks["ok"] is None
    met = verdicts([run(1, 90.0, 80.0, None)])
    assert met["vs_llama_server_at_1_ge_1.0"]["ok"] is True
    assert met["ok"] is True
