"""Aggregate tokens/s of the embedded engine at 1, 8 and 32 concurrent requests.

Baseline, measured in the same run: the same requests sent one after another through plain
llama-cpp-python ``Llama.__call__`` on the same GGUF file. Every request generates exactly
``--max-tokens`` tokens (end-of-sequence is ignored on both sides) from the same prompts.

    python bench/engine.py [--max-tokens 64] [--concurrency 1 8 32] [--backend llamacpp]

``--backend transformers --model-dir DIR`` runs the same sweep on the transformers engine
(the GPU check), without the llama.cpp baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import threading
import time
from typing import Any

from textnlp.backends.llamacpp import LlamaCppBackend, resolve_model_path
from textnlp.backends.registry import ModelCatalogue
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest

PROMPTS = [
    "Write a short review of a pair of wireless earbuds.",
    "Describe a rainy afternoon in a small coastal town.",
    "Explain how a bicycle gear system works.",
    "Tell a short story about a lost cat that finds its way home.",
    "List some tips for staying focused while studying.",
    "Write a product description for a ceramic coffee mug.",
    "Summarise the plot of a detective novel you invent.",
    "Give advice to someone starting to learn the guitar.",
]


def prompts(n: int) -> list[str]:
    return [PROMPTS[i % len(PROMPTS)] for i in range(n)]


def baseline(model_path: str, n: int, max_tokens: int, threads: int, rounds: int) -> dict[str, Any]:
    """Plain ``Llama.__call__``, run in a thread of its own that ends before the sweep.

    llama.cpp's OpenMP (libgomp) keeps a pool of worker threads per calling thread for as long
    as that thread lives. Left on the main thread, the baseline's pool would sit beside the
    engine's, and once libgomp manages more threads than there are cores it throttles its
    spin-waits for every team: the engine ran 25% slower at concurrency 1 on 2 cores.
    """
    result: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: result.update(_baseline(model_path, n, max_tokens, threads, rounds))
    )
    worker.start()
    worker.join()
    return result


def _baseline(
    model_path: str, n: int, max_tokens: int, threads: int, rounds: int
) -> dict[str, Any]:
    from llama_cpp import Llama

    llm = Llama(model_path=model_path, n_ctx=2048, n_threads=threads, verbose=False)
    eos = llm.token_eos()
    llm("warm up", max_tokens=4)
    rates, tokens = [], 0
    for round_ in range(rounds):
        tokens = 0
        started = time.perf_counter()
        for i, prompt in enumerate(prompts(n)):
            out: Any = llm(
                prompt,
                max_tokens=max_tokens,
                temperature=0.8,
                top_p=0.95,
                seed=round_ * 1000 + i,
                logit_bias={eos: -1e9},
            )
            tokens += out["usage"]["completion_tokens"]
        rates.append(tokens / (time.perf_counter() - started))
    llm.close()
    return {
        "requests": n,
        "tokens_per_round": tokens,
        "tokens_per_s": statistics.median(rates),
        "rounds": [round(rate, 1) for rate in rates],
    }


async def sweep(
    backend: Any, levels: list[int], max_tokens: int, rounds: int
) -> list[dict[str, Any]]:
    """Tokens/s at each concurrency: the median of ``rounds`` rounds."""
    runs = []
    await backend.generate([_request("warm up", 4, 0)])
    for concurrency in levels:
        rates, tokens = [], 0
        for round_ in range(rounds):
            requests = [
                _request(p, max_tokens, round_ * 1000 + i)
                for i, p in enumerate(prompts(concurrency))
            ]
            started = time.perf_counter()
            completions = await backend.generate(requests)
            elapsed = time.perf_counter() - started
            tokens = sum(c.usage.completion_tokens for c in completions)
            rates.append(tokens / elapsed)
        runs.append(
            {
                "concurrency": concurrency,
                "tokens_per_round": tokens,
                "tokens_per_s": statistics.median(rates),
                "rounds": [round(rate, 1) for rate in rates],
            }
        )
    return runs


def _request(prompt: str, max_tokens: int, seed: int) -> GenerationRequest:
    params = GenerationParams(max_tokens=max_tokens, temperature=0.8, top_p=0.95, seed=seed)
    return GenerationRequest(prompt=prompt, params=params, ignore_eos=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--baseline-requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["llamacpp", "transformers"], default="llamacpp")
    parser.add_argument("--model-dir", help="transformers: a model directory or GGUF file")
    parser.add_argument(
        "--weights",
        default="catalogue",
        help="llamacpp: q4_0, q8_0, f16, original, or the catalogue's choice (default)",
    )
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {threads} cores, {platform.system()}",
        "max_tokens": args.max_tokens,
        "backend": args.backend,
    }
    if args.backend == "llamacpp":
        path = str(resolve_model_path("embedded:smollm2"))
        result["baseline"] = baseline(
            path, args.baseline_requests, args.max_tokens, threads, args.rounds
        )
        spec = ModelCatalogue.load().get("smollm2-135m")
        options: dict[str, Any] = {"n_parallel": max(args.concurrency)}
        if args.weights != "catalogue":
            options["weights"] = None if args.weights == "original" else args.weights
        result["weights"] = options.get("weights", spec.options.get("weights", "original"))
        backend: Any = LlamaCppBackend(spec, **options)
    else:
        from textnlp.backends.transformers import TransformersBackend

        spec = ModelSpec(
            id="hf-model",
            backend="transformers",
            path=args.model_dir,
            context_length=2048,
            options={"max_batch_size": max(args.concurrency)},
        )
        backend = TransformersBackend(spec)
    async with backend:
        runs = await sweep(backend, args.concurrency, args.max_tokens, args.rounds)
    base = result.get("baseline", {}).get("tokens_per_s")
    for run in runs:
        if base:
            run["ratio"] = run["tokens_per_s"] / base
    result["runs"] = runs
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
