"""A dataset run from one template with the engine's shared-prefix reuse on and off (issue 18).

Every record of a template run shares the rendered system prompt and the fixed start of the
user prompt; with reuse on, the engine prefills that prefix once and copies its KV (or finds it
still in a freed slot), with reuse off it prefills every prompt in full. Both sides run the
same 200 records (same variables, seeds and ``max_tokens``) through the dataset pipeline
(``GenerationService.generate_dataset``, no response cache), each with the catalogue's
``smollm2-135m`` entry, the other side as a ``models.yaml`` entry with ``reuse_prefix: false``.
Rounds alternate the order (on, off, off, on...); the medians are reported with every round
(the noise). The engine's counters show how many prompt tokens were computed, kept and copied,
and the records' texts are compared: reuse must not change a token.

    python bench/prefix_reuse.py [--count 200] [--max-tokens 24 120] [--rounds 2]
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

from textnlp.backends.llamacpp import LlamaCppBackend
from textnlp.bootstrap import Platform
from textnlp.config import Settings, load_settings
from textnlp.services.generation import DatasetJob

TEMPLATE = "product-review"
MODELS = {"on": "smollm2-135m", "off": "smollm2-135m-full-prefill"}
NO_REUSE_ENTRY = f"""\
models:
  - id: {MODELS["off"]}
    backend: llamacpp
    path: "embedded:smollm2"
    context_length: 2048
    defaults: {{max_tokens: 256, temperature: 0.7, top_p: 0.9}}
    options: {{weights: q8_0, reuse_prefix: false}}
"""


async def run(
    settings: Settings, side: str, count: int, max_tokens: int, out: Path
) -> dict[str, Any]:
    async with Platform(settings) as textnlp:
        model = MODELS[side]
        warm = out.with_suffix(".warm.jsonl")  # load the model outside the timing
        await textnlp.generation.generate_dataset(
            DatasetJob(TEMPLATE, 2, warm, model, {"max_tokens": 4}, seed=99)
        )
        backend = await textnlp.pool.get(model)
        assert isinstance(backend, LlamaCppBackend)
        engine = backend.engine
        before = dict(engine.counters)
        started = time.perf_counter()
        summary = await textnlp.generation.generate_dataset(
            DatasetJob(TEMPLATE, count, out, model, {"max_tokens": max_tokens}, seed=1)
        )
        seconds = time.perf_counter() - started
        counters = {k: v - before[k] for k, v in engine.counters.items()}
    return {
        "seconds": seconds,
        "records_per_s": count / seconds,
        "completion_tokens": summary.completion_tokens,
        "counters": counters,
        "texts": [json.loads(line)["text"] for line in out.read_text().splitlines()],
    }


def measure(
    settings: Settings, tmp: Path, count: int, max_tokens: int, rounds: int
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for round_ in range(rounds):
        order = ["on", "off"] if round_ % 2 == 0 else ["off", "on"]
        for side in order:
            out = tmp / f"{side}-{max_tokens}-{round_}.jsonl"
            runs[side].append(asyncio.run(run(settings, side, count, max_tokens, out)))
    rates = {side: [r["records_per_s"] for r in results] for side, results in runs.items()}
    median = {side: statistics.median(values) for side, values in rates.items()}
    spread = max((max(v) - min(v)) / min(v) for v in rates.values())
    return {
        "max_tokens": max_tokens,
        "records_per_s": {side: round(value, 3) for side, value in median.items()},
        "rounds": {side: [round(v, 3) for v in values] for side, values in rates.items()},
        "ratio": round(median["on"] / median["off"], 3),
        "noise": round(spread, 3),
        "prompt_tokens": {side: results[-1]["counters"] for side, results in runs.items()},
        "completion_tokens": runs["on"][-1]["completion_tokens"],
        "same_texts": all(on["texts"] == off["texts"] for on in runs["on"] for off in runs["off"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[24, 120])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "models.yaml").write_text(NO_REUSE_ENTRY)
        settings = load_settings(home=home, generation={"response_cache": False})
        results = [
            measure(settings, Path(tmp), args.count, max_tokens, args.rounds)
            for max_tokens in args.max_tokens
        ]
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
                "template": TEMPLATE,
                "records": args.count,
                "target_ratio": 1.3,
                "runs": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
