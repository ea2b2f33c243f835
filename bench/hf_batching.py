"""The transformers engine's two batching modes, side by side: tokens/s at N concurrent requests.

Both modes of ``TransformersBackend`` are loaded at once and measured round by round in turn
(static, continuous, static, ...), so drift of the machine's speed hits both alike. Every
request generates exactly ``--max-tokens`` tokens (end-of-sequence ignored), temperature 0.8,
top-p 0.95, its own seed. Baseline, same run: plain ``model.generate`` called for one request
after another, as a user of transformers would without a batching engine.

    python bench/hf_batching.py --model PATH [--concurrency 1 8 32] [--max-tokens 64]

``--model`` is a model directory, a GGUF file or ``embedded:smollm2``. ``bench/gpu_check.sh``
runs it on a GPU host (and, with ``GPU_CHECK_DEVICE=cpu``, here). Besides the speeds it checks,
without failing, that a seeded request's text is the same alone and inside a full batch, in
each mode: bfloat16 on a GPU may break a near-tie differently in a batch of another shape.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import prompts  # noqa: E402
from textnlp.backends.spec import ModelSpec  # noqa: E402
from textnlp.backends.transformers import TransformersBackend  # noqa: E402
from textnlp.domain import GenerationParams, GenerationRequest  # noqa: E402

MODES = ("static", "continuous")


def requests(n: int, max_tokens: int, round_: int) -> list[GenerationRequest]:
    return [
        GenerationRequest.chat(
            prompt,
            params=GenerationParams(
                max_tokens=max_tokens, temperature=0.8, top_p=0.95, seed=round_ * 1000 + i
            ),
        ).model_copy(update={"ignore_eos": True})
        for i, prompt in enumerate(prompts(n))
    ]


def mixed_lengths(n: int, max_tokens: int, round_: int) -> list[list[GenerationRequest]]:
    """``n`` clients' requests, 4 each, a quarter of them ``max_tokens`` long and the rest a
    quarter of that: the lengths of a dataset's records differ, and a static batch decodes
    until its longest request ends."""
    short = max(1, max_tokens // 4)
    batch = requests(n * 4, max_tokens, round_)
    lengths = [max_tokens if i % 4 == (i // 4) % 4 else short for i in range(n * 4)]
    sized = [
        r.model_copy(update={"params": r.params.model_copy(update={"max_tokens": size})})
        for r, size in zip(batch, lengths, strict=True)
    ]
    return [sized[client * 4 : client * 4 + 4] for client in range(n)]


async def closed_loop(
    backend: TransformersBackend, clients: list[list[GenerationRequest]]
) -> float:
    """Tokens/s of clients that each send their next request when the last one is answered."""

    async def client(mine: list[GenerationRequest]) -> int:
        tokens = 0
        for request in mine:
            tokens += (await backend.generate([request]))[0].usage.completion_tokens
        return tokens

    started = time.perf_counter()
    tokens = sum(await asyncio.gather(*(client(mine) for mine in clients)))
    return tokens / (time.perf_counter() - started)


async def rate(backend: TransformersBackend, batch: list[GenerationRequest]) -> float:
    """Tokens/s of one burst of requests sent together."""
    started = time.perf_counter()
    completions = await backend.generate(batch)
    return sum(c.usage.completion_tokens for c in completions) / (time.perf_counter() - started)


def baseline(backend: TransformersBackend, n: int, max_tokens: int) -> dict[str, Any]:
    """Plain ``model.generate``, one request at a time, on the static backend's model."""
    import torch

    model, tokenizer = backend._model, backend._tokenizer
    tokens, started = 0, time.perf_counter()
    for request in requests(n, max_tokens, 0):
        inputs = tokenizer(backend.render(request), return_tensors="pt", add_special_tokens=False)
        inputs = inputs.to(model.device)
        torch.manual_seed(request.params.seed or 0)
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                do_sample=True,
                temperature=0.8,
                top_p=0.95,
                pad_token_id=tokenizer.pad_token_id,
            )
        tokens += output.shape[1] - inputs["input_ids"].shape[1]
    return {
        "what": "model.generate, one request after another",
        "requests": n,
        "tokens_per_s": tokens / (time.perf_counter() - started),
    }


async def same_alone_and_batched(backend: TransformersBackend, n: int) -> dict[str, Any]:
    """How many of ``n`` seeded requests read the same alone as in one batch of ``n``."""
    batch = requests(n, 24, 7)
    together = [c.text for c in await backend.generate(batch)]
    alone = [(await backend.generate([r]))[0].text for r in batch[: min(n, 4)]]
    same = sum(a == b for a, b in zip(alone, together, strict=False))
    return {"checked": len(alone), "same": same}


async def compare(
    backends: dict[str, TransformersBackend],
    rounds: int,
    measure: Callable[[TransformersBackend, Any], Awaitable[float]],
    workload: Callable[[int], Any],
    errors: dict[str, str],
) -> dict[str, Any]:
    """Each mode's median tokens/s on the same workloads, measured in turn round by round.

    A mode that fails is reported in ``errors`` and dropped from ``backends``: a lent GPU's
    few minutes still give the other mode's figures."""
    rates: dict[str, list[float]] = {mode: [] for mode in backends}
    for round_ in range(1, rounds + 1):
        for mode in list(backends):
            try:
                rates[mode].append(await measure(backends[mode], workload(round_)))
            except Exception as error:  # noqa: BLE001 - reported, and the other mode goes on
                errors[mode] = f"{type(error).__name__}: {error}"
                print(f"{mode} failed: {errors[mode]}", file=sys.stderr)
                del backends[mode], rates[mode]
                continue
            # Progress on stderr: a run cut short (a device call's time limit) still tells.
            name = getattr(workload, "func", workload).__name__
            size = getattr(workload, "args", ("",))[0]
            print(
                f"{name} {size} {mode} round {round_}: {rates[mode][-1]:.1f} tok/s", file=sys.stderr
            )
    result: dict[str, Any] = {
        mode: {
            "tokens_per_s": round(statistics.median(rates[mode]), 1),
            "rounds": [round(r, 1) for r in rates[mode]],
        }
        for mode in rates
    }
    if set(MODES) <= result.keys():
        result["continuous_over_static"] = round(
            result["continuous"]["tokens_per_s"] / result["static"]["tokens_per_s"], 2
        )
    return result


async def sweep(args: argparse.Namespace) -> dict[str, Any]:
    spec = ModelSpec(id="hf-model", backend="transformers", path=args.model, context_length=2048)
    # Every request of the largest level in the cache at once: a request holds pages of 256.
    options: dict[str, Any] = {
        "max_batch_size": max(args.concurrency),
        "cache_tokens": max(args.concurrency) * 512,
    }
    if args.device:
        options["device"] = args.device
    every = {mode: TransformersBackend(spec, batching=mode, **options) for mode in MODES}
    backends = dict(every)  # the modes still running
    errors: dict[str, str] = {}
    result: dict[str, Any] = {"errors": errors}
    try:
        for mode, backend in every.items():
            try:
                await backend.load()
                await backend.generate(requests(2, 4, 99))  # warm-up
            except Exception as error:  # noqa: BLE001 - reported; the other mode is measured
                errors[mode] = f"{type(error).__name__}: {error}"
                print(f"{mode} failed to load: {errors[mode]}", file=sys.stderr)
                del backends[mode]
        if not backends:
            raise RuntimeError(f"no batching mode loaded: {errors}")
        model = next(iter(backends.values()))._model
        result.update(device=str(model.device), dtype=str(model.dtype).removeprefix("torch."))
        result["baseline"] = baseline(
            next(iter(backends.values())), args.baseline_requests, args.max_tokens
        )
        base = result["baseline"]["tokens_per_s"]
        result["runs"] = []
        for n in args.concurrency:
            workload = functools.partial(requests, n, args.max_tokens)
            run = await compare(backends, args.rounds, rate, workload, errors)
            for mode in backends:
                run[mode]["ratio_to_baseline"] = round(run[mode]["tokens_per_s"] / base, 2)
            result["runs"].append({"concurrency": n, **run})
        result["mixed_lengths"] = [
            {
                "clients": n,
                **await compare(
                    backends,
                    args.rounds,
                    closed_loop,
                    functools.partial(mixed_lengths, n, args.max_tokens),
                    errors,
                ),
            }
            for n in args.mixed_clients or [n for n in args.concurrency if n > 1]
        ]
        if args.check_batch:
            result["seeded_alone_vs_batch"] = {
                mode: await same_alone_and_batched(backend, args.check_batch)
                for mode, backend in backends.items()
            }
    finally:
        for backend in every.values():
            await backend.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="embedded:smollm2")
    parser.add_argument("--weights", default="", help="how the weights were made (reported)")
    parser.add_argument("--device", default="", help="cuda, cpu... (default: CUDA when present)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--mixed-clients", type=int, nargs="*", help="mixed lengths' levels (default: each N > 1)"
    )
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-requests", type=int, default=8)
    parser.add_argument("--check-batch", type=int, default=8, help="0: skip the check")
    args = parser.parse_args()
    import torch
    import transformers

    started = time.perf_counter()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": args.model,
        "weights": args.weights or args.model,
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
    }
    result.update(asyncio.run(sweep(args)))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
