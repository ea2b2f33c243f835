"""JSON answers from the embedded model with the schema's grammar and without, in one run.

The same requests (a review of a product as a JSON object: ``Review`` below, a pydantic model
as users write them; the schema's text in the prompt, as ``llm-structured`` columns and
OpenAI's ``response_format`` send it) go to the llama.cpp engine twice, alternating for
``--rounds`` rounds: once as the engine got them before (no grammar: the caller checks the
text and asks again), once under ``schema_grammar``. Each side reports the share of answers
the schema accepts at the first attempt, the share cut at ``max_tokens``, and the seconds and
completion tokens it took per valid answer (the failed answers' cost included: a caller pays
for them and asks again; None when no answer was valid).

    python bench/structured_output.py [--requests 32] [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import spread  # noqa: E402
from textnlp.backends.llamacpp import LlamaCppBackend
from textnlp.backends.registry import ModelCatalogue
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.generation.json_grammar import schema_grammar
from textnlp.strict_json import extract_json_object
from textnlp.validation.safe_schema import compiled

PRODUCTS = ["a kettle", "a desk lamp", "running shoes", "a phone case", "a backpack", "earbuds"]


class Review(BaseModel):
    product: str = Field(max_length=40)
    rating: Literal[1, 2, 3, 4, 5]
    sentiment: Literal["positive", "negative", "mixed"]
    pros: list[str] = Field(max_length=3)
    cons: list[str] = Field(max_length=3)


def requests(count: int, grammar: str | None) -> list[GenerationRequest]:
    schema = json.dumps(Review.model_json_schema())
    return [
        GenerationRequest.chat(
            f"Review {PRODUCTS[i % len(PRODUCTS)]}.\n\nAnswer with only a JSON object that "
            f"matches this JSON Schema:\n{schema}",
            params=GenerationParams(max_tokens=200, temperature=0.7, seed=i),
        ).model_copy(update={"grammar": grammar})
        for i in range(count)
    ]


def valid(text: str) -> bool:
    try:
        value = extract_json_object(text)
    except ValueError:
        return False
    return compiled(Review.model_json_schema()).first_error(value) is None


async def run(count: int, rounds: int, threads: int) -> dict[str, Any]:
    grammar = schema_grammar(Review.model_json_schema())
    assert grammar is not None
    spec = ModelCatalogue.load().get("smollm2-135m")
    sides: dict[str, dict[str, list[float]]] = {
        side: {"valid": [], "cut": [], "seconds": [], "tokens": []}
        for side in ("grammar", "no_grammar")
    }
    async with LlamaCppBackend(spec, n_parallel=32, n_threads=threads) as backend:
        await backend.generate(requests(4, grammar))  # warm up
        for _ in range(rounds):
            for side, side_grammar in (("no_grammar", None), ("grammar", grammar)):
                started = time.perf_counter()
                answers = await backend.generate(requests(count, side_grammar))
                seconds = time.perf_counter() - started
                good = sum(valid(a.text) for a in answers)
                tokens = sum(a.usage.completion_tokens for a in answers)
                figures = sides[side]
                figures["valid"].append(good / count)
                figures["cut"].append(sum(a.finish_reason == "length" for a in answers) / count)
                figures["seconds"].append(seconds / good if good else math.inf)
                figures["tokens"].append(tokens / good if good else math.inf)
    result: dict[str, Any] = {"requests": count, "rounds": rounds}
    for side, figures in sides.items():
        result[side] = {
            "valid_share": round(statistics.median(figures["valid"]), 3),
            "cut_at_max_tokens_share": round(statistics.median(figures["cut"]), 3),
            "seconds_per_valid": _finite(statistics.median(figures["seconds"]), 3),
            "tokens_per_valid": _finite(statistics.median(figures["tokens"]), 1),
            "rounds": {k: [_finite(v, 3) for v in values] for k, values in figures.items()},
            "noise": spread(figures["seconds"]) if math.isfinite(max(figures["seconds"])) else None,
        }
    with_grammar, without = (result[side]["seconds_per_valid"] for side in sides)
    # None when no answer without the grammar was valid: no finite cost to compare with
    result["seconds_per_valid_ratio"] = (
        round(with_grammar / without, 3) if with_grammar and without else None
    )
    return result


def _finite(value: float, digits: int) -> float | None:
    """``value`` rounded; None for infinity (no valid answer in that round)."""
    return round(value, digits) if math.isfinite(value) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.requests, args.rounds, args.threads)), indent=2))


if __name__ == "__main__":
    main()
