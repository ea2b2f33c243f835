"""A recipe run with the engine's shelf and without it: prompt tokens computed, and time.

``bench/recipes.py``'s recipe (a review, then a judge scoring it on two criteria, retrying an
answer without a score) keeps all 32 slots of the llama.cpp engine busy, so a freed slot goes
at once to the next request. Without the shelf the prompt it held is lost, though the same
candidate's judge is about to ask for it again (a retry sends the same prompt, the second
criterion shares the review). With it (``shelf_streams``, 16 by default) the prompt is first
copied to a spare KV stream and copied back when asked for.

Both sides run the same ``--count`` records of the recipe (seed 0, response cache off, 2
threads) through ``GenerationService.generate_dataset``; the other side's catalogue entry says
``shelf_streams: 0``. The model loads before the clock starts. Rounds alternate the order
(shelf, none, none, shelf...); the medians are reported with every round (the noise). The
engine's counters say how many prompt tokens were computed, kept in a slot and copied, and the
records are compared: the shelf must not change a token of them.

    python bench/recipe_shelf.py [--count 10] [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.recipes import MODEL, RECIPE, home_settings  # noqa: E402
from textnlp.backends.llamacpp import LlamaCppBackend  # noqa: E402
from textnlp.bootstrap import Platform  # noqa: E402
from textnlp.config import Settings  # noqa: E402
from textnlp.services.generation import DatasetJob  # noqa: E402

SHELF = {"shelf": 16, "none": 0}


async def run(settings: Settings, count: int, out: Path) -> dict[str, Any]:
    async with Platform(settings) as textnlp:
        backend = await textnlp.pool.get(MODEL)  # loaded outside the timing
        assert isinstance(backend, LlamaCppBackend)
        engine = backend.engine
        before = dict(engine.counters)
        started = time.perf_counter()
        summary = await textnlp.generation.generate_dataset(
            DatasetJob(str(RECIPE), count, out, seed=0)
        )
        seconds = time.perf_counter() - started
        counters = {k: v - before[k] for k, v in engine.counters.items()}
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return {
        "seconds": seconds,
        "records_per_s": summary.written / seconds,
        "candidates": (summary.acceptance or {}).get("candidates"),
        "counters": counters,
        "records": [(r["index"], r["text"], r.get("data")) for r in records],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SHELF}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        homes = {
            side: home_settings(tmp / side, args.threads, cache=False, shelf_streams=streams)
            for side, streams in SHELF.items()
        }
        for round_ in range(args.rounds):
            order = list(SHELF) if round_ % 2 == 0 else list(reversed(SHELF))
            for side in order:
                out = tmp / f"{side}-{round_}.jsonl"
                runs[side].append(asyncio.run(run(homes[side], args.count, out)))
    rates = {side: [r["records_per_s"] for r in results] for side, results in runs.items()}
    median = {side: statistics.median(values) for side, values in rates.items()}
    computed = {
        side: statistics.median(r["counters"]["prompt_tokens_computed"] for r in results)
        for side, results in runs.items()
    }
    first = runs["shelf"][0]["records"]
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
                "recipe": "bench/recipes_bench.yaml",
                "records": args.count,
                "threads": args.threads,
                "shelf_streams": SHELF,
                "records_per_s": {side: round(value, 4) for side, value in median.items()},
                "rounds": {side: [round(v, 4) for v in values] for side, values in rates.items()},
                "ratio": round(median["shelf"] / median["none"], 3),
                "noise": round(max((max(v) - min(v)) / min(v) for v in rates.values()), 3),
                "prompt_tokens_computed": computed,
                "computed_ratio": round(computed["shelf"] / computed["none"], 3),
                "counters": {side: [r["counters"] for r in rs] for side, rs in runs.items()},
                "candidates": {side: [r["candidates"] for r in rs] for side, rs in runs.items()},
                "same_records": all(r["records"] == first for rs in runs.values() for r in rs),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
