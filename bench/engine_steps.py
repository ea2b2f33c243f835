"""Two costs inside the llama.cpp engine's step, each against its alternative in the same run.

1. ``one_call_step``: a step with prompt chunks and decoding sequences, in one ``llama_decode``
   (what ``BatchingEngine._step`` does when ``_merges`` allows) against two (the chunks, then
   the decode). Every slot holds 200 tokens of KV; 4 prompts of 48 tokens at scattered slots
   and 16 decoding sequences around them. Median of ``--rounds`` timings of each shape.
2. ``grammar_sampling``: the time spent sampling 64 judge requests (``bench/recipes_bench.yaml``'s
   judge: two criteria, its params, under ``LlmJudge.criterion_grammar``), with the
   grammar masks kept (``GRAMMAR_MASKS``) and without; the two alternate for ``--rounds``
   rounds, and each figure is the median, the rounds beside it.

Ratios are the new way's time over the old way's (below 1: faster); the noise is each side's
spread over its rounds.

    python bench/engine_steps.py [--rounds 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import llama_cpp
import yaml

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import spread  # noqa: E402
from bench.recipes import JUDGE as JUDGE_COLUMN  # noqa: E402
from bench.recipes import RECIPE  # noqa: E402
from textnlp.backends import llamacpp_engine
from textnlp.backends.llamacpp import LlamaCppBackend, reencoded, resolve_model_path
from textnlp.backends.llamacpp_engine import BatchingEngine, _Sampling
from textnlp.backends.registry import ModelCatalogue
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.generation.recipes.columns import LlmJudge
from textnlp.generation.recipes.recipe import parse_recipe

CACHED = 200
PROMPTS = [2, 7, 12, 17]
DECODING = [slot for slot in range(20) if slot not in PROMPTS]
CHUNK = 48


class FilledEngine:
    """The engine (the catalogue's Q8_0 re-encoding, 32 slots), every slot holding ``CACHED``
    tokens of KV, and the time of one ``llama_decode`` of given rows over them."""

    def __init__(self, threads: int) -> None:
        path = reencoded(resolve_model_path("embedded:smollm2"), "q8_0")  # type: ignore[arg-type]
        self.engine = BatchingEngine(str(path), n_parallel=32, n_threads=threads)
        self.tokens = [random.Random(0).randrange(1000, 20000) for _ in range(CACHED)]
        for first in range(0, 32, 8):
            for start in range(0, CACHED, 50):
                piece = self.tokens[start : start + 50]
                self.engine._decode(dict.fromkeys(range(first, first + 8), piece), set())

    def step(self, rows: dict[int, list[int]]) -> float:
        """Seconds of one ``llama_decode`` of ``rows`` (slot: tokens) after ``CACHED`` tokens."""
        for slot in range(32):  # back to CACHED tokens
            llama_cpp.llama_memory_seq_rm(self.engine._memory, slot, CACHED, -1)
            del self.engine._cached[slot][CACHED:]
        started = time.perf_counter()
        self.engine._decode(rows, set(rows))
        return time.perf_counter() - started

    def close(self) -> None:
        self.engine.close()


def one_call_step(rounds: int, threads: int) -> dict[str, Any]:
    filled = FilledEngine(threads)
    timed, tokens = filled.step, filled.tokens
    try:
        chunks = dict.fromkeys(PROMPTS, tokens[:CHUNK])
        decodes = {slot: [tokens[0]] for slot in DECODING}
        one, two = [], []
        for _ in range(rounds):
            one.append(timed({**chunks, **decodes}))
            two.append(timed(chunks) + timed(decodes))
    finally:
        filled.close()
    one_ms, two_ms = statistics.median(one) * 1000, statistics.median(two) * 1000
    return {
        "shape": f"{len(PROMPTS)} prompts x {CHUNK} tokens, {len(DECODING)} decoding, "
        f"{CACHED} cached each",
        "one_call_ms": round(one_ms, 1),
        "two_calls_ms": round(two_ms, 1),
        "ratio": round(one_ms / two_ms, 3),
        "noise": {"one_call": spread(one), "two_calls": spread(two)},
    }


REVIEWS = [
    ("a mug", "Great mug, keeps tea hot for an hour and the handle stays cool."),
    ("earbuds", "They broke after a week and sound tinny, but the case is nice."),
    ("a lamp", "I love this lamp: bright, cheap and easy to set up on my desk."),
    ("a backpack", "Roomy, though a zip stuck on the second trip."),
]


def judge_requests() -> list[GenerationRequest]:
    """Two requests (one per criterion) for each of 32 reviews, from the bench recipe's judge."""
    recipe = parse_recipe(yaml.safe_load(RECIPE.read_text()), source=str(RECIPE))
    judge = recipe.columns[JUDGE_COLUMN]
    assert isinstance(judge, LlmJudge)
    params = GenerationParams(**judge.params)
    requests = []
    for i in range(32):
        product, review = REVIEWS[i % len(REVIEWS)]
        row = {"product": product, "review": f"{review} ({i})"}
        for criterion in judge.rubric:
            messages = judge.criterion_messages(criterion, row, constrained=True)
            grammar = judge.criterion_grammar(criterion)
            seeded = params.model_copy(update={"seed": i})
            requests.append(GenerationRequest(messages=messages, params=seeded, grammar=grammar))
    return requests


async def grammar_sampling(rounds: int, threads: int) -> dict[str, Any]:
    spent = [0.0]
    sample = _Sampling.sample

    def timed(self: _Sampling, *args: Any) -> int | None:
        started = time.perf_counter()
        try:
            return sample(self, *args)
        finally:
            spent[0] += time.perf_counter() - started

    _Sampling.sample = timed  # type: ignore[method-assign,assignment]
    kept: list[float] = []
    fresh: list[float] = []
    tokens = 0
    spec = ModelCatalogue.load().get("smollm2-135m")
    requests = judge_requests()
    try:
        async with LlamaCppBackend(spec, n_parallel=32, n_threads=threads) as backend:
            await backend.generate(requests[:8])  # warm up
            for _ in range(rounds):
                for masks, times in ((llamacpp_engine.GRAMMAR_MASKS, kept), (0, fresh)):
                    saved, llamacpp_engine.GRAMMAR_MASKS = llamacpp_engine.GRAMMAR_MASKS, masks
                    backend.engine._candidates.masks.clear()
                    spent[0] = 0.0
                    answers = await backend.generate(requests)
                    llamacpp_engine.GRAMMAR_MASKS = saved
                    times.append(spent[0])
                    tokens = sum(a.usage.completion_tokens for a in answers)
    finally:
        _Sampling.sample = sample  # type: ignore[method-assign]
    kept_s, fresh_s = statistics.median(kept), statistics.median(fresh)
    return {
        "requests": len(requests),
        "completion_tokens": tokens,
        "sampling_s_masks_kept": round(kept_s, 3),
        "sampling_s_masks_computed": round(fresh_s, 3),
        "rounds": {"kept": [round(t, 3) for t in kept], "computed": [round(t, 3) for t in fresh]},
        "ratio": round(kept_s / fresh_s, 3),
        "noise": {"kept": spread(kept), "computed": spread(fresh)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    result = {
        "one_call_step": one_call_step(args.rounds, args.threads),
        "grammar_sampling": asyncio.run(grammar_sampling(max(2, args.rounds // 2), args.threads)),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
