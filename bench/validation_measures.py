"""What ``validate_dataset`` spends on each record: its measures (``measures.measure``: words,
tokens, PII, repetition) and PII detection alone (``find_pii``), in CPU time, by the fast paths
against their plain definitions (``tests/unit/validation/definitions.py``: the code as it was
before them, put back in place for the baseline side) in the same run, on the same records.

The records are seeded mixed-language texts (``tests/unit/validation/mixed_texts.py``: English,
Chinese, Arabic, Thai, Hindi and Tamil, pointed Hebrew, Turkish, NFD Latin, PII in folded
forms). Each figure is the median of ``--rounds`` rounds (the sides alternate which goes first),
with the rounds beside it and ``noise``: the larger of the two sides' spreads (range over
median; null with one round). Both sides' measures must be the same, column by column.

``targets`` checks what bench/RESULTS.md states of this script: the same measures on both
sides, and the fast measures at least ``measures_speedup_min`` times as fast. Exits 1 when a
target is missed.

    python bench/validation_measures.py [--records 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import machine, spread, widest  # noqa: E402

#: What bench/RESULTS.md states of this script's figures.
TARGETS = {"measures_speedup_min": 1.5}
COLUMNS = (
    "n_words", "n_tokens", "n_chars", "empty", "truncated", "pii", "replacement",
    "repeated_ngram_ratio", "distinct_2",
)  # fmt: skip


def _cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def _columns(measures: Any) -> list[Any]:
    """What a report reads of the measures, comparable with ``==`` (NaN as None)."""
    columns = [[None if v != v else v for v in getattr(measures, name)] for name in COLUMNS]
    return [*columns, measures.texts, list(measures.pii_kinds.items())]


def run(records: int, rounds: int) -> dict[str, Any]:
    import pytest

    from tests.unit.validation.definitions import use_definitions
    from tests.unit.validation.mixed_texts import mixed_texts
    from textnlp.validation.loader import DatasetRow
    from textnlp.validation.measures import measure
    from textnlp.validation.pii import find_pii

    rows = [DatasetRow(text=text) for text in mixed_texts(records, seed=1)]
    texts = [row.text for row in rows]
    seconds: dict[str, dict[str, list[float]]] = {
        side: {"measures": [], "find_pii": []} for side in ("fast", "definitions")
    }
    columns: dict[str, list[Any]] = {}
    for side in ("fast", "definitions"):  # warm up: imports, caches, regex tables
        with pytest.MonkeyPatch.context() as patch:
            if side == "definitions":
                use_definitions(patch)
            measure(rows[:50])
    for round_ in range(rounds):  # alternate who goes first: drift falls on both sides
        for side in ("fast", "definitions")[:: 1 if round_ % 2 == 0 else -1]:
            with pytest.MonkeyPatch.context() as patch:
                if side == "definitions":
                    use_definitions(patch)
                elapsed, measures = _cpu(lambda: measure(rows))
                seconds[side]["measures"].append(elapsed)
                columns[side] = _columns(measures)
                elapsed, _ = _cpu(lambda: [find_pii(text) for text in texts])
                seconds[side]["find_pii"].append(elapsed)
    out: dict[str, Any] = {
        "records": records,
        "identical_measures": columns["fast"] == columns["definitions"],
    }
    for figure in ("measures", "find_pii"):
        fast, plain = seconds["fast"][figure], seconds["definitions"][figure]
        out[figure] = {
            "fast_cpu_s": round(statistics.median(fast), 3),
            "fast_rounds": [round(s, 3) for s in fast],
            "definitions_cpu_s": round(statistics.median(plain), 3),
            "definitions_rounds": [round(s, 3) for s in plain],
            "speedup": round(statistics.median(plain) / statistics.median(fast), 3),
            "noise": widest(spread(fast), spread(plain)),
        }
    return out


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    """Each target RESULTS.md states, judged on the medians, with the noise beside it."""
    limit = TARGETS["measures_speedup_min"]
    value = result["measures"]["speedup"]
    same = result["identical_measures"]
    checks = {
        "identical_measures": {"value": same, "ok": same},
        f"measures_speedup_ge_{limit}": {
            "value": value, "noise": result["measures"]["noise"], "ok": value >= limit,
        },
    }  # fmt: skip
    return {**checks, "ok": all(check["ok"] for check in checks.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="2 or more for noise")
    args = parser.parse_args()
    if args.rounds < 1 or args.records < 50:
        parser.error("--rounds must be 1 or more, --records 50 or more")
    result = run(args.records, args.rounds)
    out = {
        "machine": machine(),
        "rounds": args.rounds,
        **result,
        "targets": verdicts(result),
    }
    print(json.dumps(out, indent=2))
    if not out["targets"]["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
