"""``bench/validation.py`` judges the targets bench/RESULTS.md states of it (no timing here:
the verdicts are computed from figures given to them)."""

from __future__ import annotations

from typing import Any

from bench.validation import verdicts


def run(records: int, ours: float, theirs: float, recall: float = 1.0) -> dict[str, Any]:
    return {
        "records": records,
        "textnlp_s": ours,
        "textnlp_rounds": [ours * 0.95, ours, ours * 1.05],
        "datasketch_s": theirs,
        "textnlp_recall": recall,
        "datasketch_recall": 0.99,
        "ratio_textnlp_over_datasketch": round(ours / theirs, 3),
        "noise": 0.1,
    }


EMBEDDED = {"ratio_textnlp_over_plain_throughput": 0.95, "noise": 0.05}


def test_every_target_met() -> None:
    checks = verdicts([run(100_000, 7.0, 16.0), run(200_000, 13.0, 33.0)], EMBEDDED)
    assert checks["ok"] is True
    assert checks["ratio_at_100000_le_1.5"] == {"value": 0.438, "noise": 0.1, "ok": True}
    assert checks["textnlp_scaling_le_2.2"]["value"] == 1.857
    assert checks["textnlp_scaling_le_2.2"]["noise"] == 0.1
    assert checks["embeddings_ratio_ge_0.9"]["ok"] is True


def test_each_miss_is_named_and_fails_the_whole() -> None:
    slow = verdicts([run(100_000, 20.0, 10.0), run(200_000, 50.0, 20.0)], EMBEDDED)
    assert slow["ratio_at_100000_le_1.5"]["ok"] is False
    assert slow["textnlp_scaling_le_2.2"]["ok"] is False
    assert slow["ok"] is False
    lost = verdicts([run(100_000, 7.0, 16.0, recall=0.9)], None)
    assert lost["textnlp_recall_ge_datasketch"]["ok"] is False
    assert lost["ok"] is False
    embedded = verdicts([], {"ratio_textnlp_over_plain_throughput": 0.8, "noise": None})
    assert embedded == {
        "embeddings_ratio_ge_0.9": {"value": 0.8, "noise": None, "ok": False},
        "ok": False,
    }
