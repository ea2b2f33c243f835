"""OpenAI-compatible API benchmark: the ``openai`` SDK calling ``POST /v1/chat/completions`` of
``textnlp serve`` (embedded SmolLM2-135M, the batching engine) against the same SDK calling
llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``), in one run.

Both servers serve the same GGUF file: the catalogue's Q8_0 re-encoding of the shipped Q4_1 under
``~/.cache/textnlp/models`` (``bench/load.py``'s ``served_weights``; its path is in the JSON), with
the same threads (``--threads``, default 2, for prompts and generation alike), 2048 tokens of
context per sequence, batches of 512 and flash attention on (llama.cpp's ``auto`` in TextNLP's
engine turns it on for the CPU; llama-cpp-python's server defaults to off, so it is passed
``--flash_attn true``: the comparison is of servers, not of kernels). TextNLP gets the thread
count through a ``models.yaml`` in its own temporary ``TEXTNLP_HOME`` and runs with the response
cache off. llama-cpp-python reads ChatML (``--chat_format chatml``), which is SmolLM2's template
that TextNLP renders from the GGUF.

Every request is one system and one user message, ``max_tokens`` 64, temperature 0.7, top-p 0.9
and a fixed seed per request; request *i* of a phase sends prompt *i* with seed 1000 + *i* to
both servers, and every phase and round has prompts of its own (no answer can come from a
cache; llama-cpp-python still reuses the shared system-prompt prefix from its previous prompt,
as it does in service). Each side answers until its own end-of-sequence or 64 tokens, so the
completion tokens of each side are printed. Per server, after warm-up requests (not counted):

- ``ttft_1``: streamed requests one after another (``stream: true``): time to first token =
  from sending the request to the first chunk with content; p50 (and p90) reported;
- ``c1`` and ``c16``: closed loops of 1 and 16 concurrent clients (one ``AsyncOpenAI``) sending
  a fixed number of non-streamed requests; completion tokens (``usage``) per second of the phase.

One server runs at a time (two cores); each round starts each server afresh and the order
rotates; every figure is the median of the rounds (default 2) with every round's value and the
spread ((max - min) / median) beside it: the noise. Ratios are TextNLP / llama-cpp-python.
Targets (issue 16): tokens/s ratio >= 1.0x at 16 clients; p50 TTFT ratio <= 1.2x at 1 client;
and no request failed (``targets.ok`` is false otherwise). llama.cpp's threads spin-wait, so
run this on a quiet machine: the load average is printed before, at each server's start and
after (the benchmark itself adds about 2 to it on two cores: the server's two threads).

    python bench/openai_compat.py [--quick] [--rounds 2] [--threads 2] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.load import load_average, served_weights  # noqa: E402
from tests.conftest import free_port, stop_process, wait_for_port  # noqa: E402
from textnlp.backends.registry import BUILTIN_CATALOGUE  # noqa: E402

MODEL_ID = "smollm2-135m"
SYSTEM = "You write one short, concrete paragraph."
TOPICS = ["rivers", "bread", "chess", "comets", "bicycles", "tea", "glaciers", "violins"]
USER, PASSWORD = "bench", "bench-password-1"
TEMPERATURE, TOP_P = 0.7, 0.9
#: requests per measurement: (streamed at 1 client, non-streamed at 1 client, at 16 clients)
FULL, QUICK = (16, 16, 64), (4, 4, 16)


def prompt(phase: int, index: int) -> str:
    return f"Tell me something new about {TOPICS[index % len(TOPICS)]} (note {phase}-{index})."


@dataclass(frozen=True)
class Side:
    """One server under test, as an OpenAI client sees it."""

    name: str
    base_url: str
    api_key: str
    model: str


# -- the servers ---------------------------------------------------------------------------------
@contextmanager
def textnlp_side(threads: int) -> Iterator[Side]:
    import httpx

    home = Path(tempfile.mkdtemp(prefix="textnlp-bench-openai-"))
    # The built-in entry with the thread count pinned (the engine's default is every core).
    builtin = yaml.safe_load(BUILTIN_CATALOGUE.read_text())["models"]
    entry = next(dict(m) for m in builtin if m["id"] == MODEL_ID)
    entry["options"] = {**entry.get("options", {}), "n_threads": threads}
    (home / "models.yaml").write_text(yaml.safe_dump({"models": [entry]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTNLP_")}
    env |= {
        "TEXTNLP_HOME": str(home),
        "TEXTNLP_LOG_LEVEL": "WARNING",
        "TEXTNLP_GENERATION__RESPONSE_CACHE": "false",
    }
    textnlp = [sys.executable, "-m", "textnlp.cli.main"]
    subprocess.run(
        [*textnlp, "users", "create", USER, "--password-stdin"],
        input=PASSWORD.encode(), env=env, check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [*textnlp, "serve", "--port", str(port)],
        env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=120, proc=proc)
        login = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            json={"username": USER, "password": PASSWORD},
        )
        token = login.raise_for_status().json()["access_token"]
        yield Side("textnlp", f"http://127.0.0.1:{port}/v1", token, MODEL_ID)
    finally:
        stop_process(proc)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def llama_cpp_python_side(model: Path, threads: int) -> Iterator[Side]:
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_batch", "512", "--chat_format", "chatml",
        "--n_threads", str(threads), "--n_threads_batch", str(threads), "--flash_attn", "true",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=120, proc=proc)
        yield Side("llama_cpp_python", f"http://127.0.0.1:{port}/v1", "unused", "smollm2")
    finally:
        stop_process(proc)


# -- the measurements ----------------------------------------------------------------------------
def _request(side: Side, phase: int, index: int, max_tokens: int) -> dict[str, Any]:
    return {
        "model": side.model,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt(phase, index)},
        ],
        "max_tokens": max_tokens,
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "seed": 1000 + index,
    }


def _client(side: Side) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=side.base_url, api_key=side.api_key, max_retries=0, timeout=600)


async def throughput(
    side: Side, phase: int, concurrency: int, requests: int, max_tokens: int
) -> dict[str, Any]:
    """``requests`` non-streamed requests from ``concurrency`` clients: completion tokens/s."""
    import openai

    tokens: list[int] = []
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    queue = iter(range(requests))
    async with _client(side) as client:

        async def worker() -> None:
            for index in queue:
                started = time.perf_counter()
                try:
                    answer = await client.chat.completions.create(
                        **_request(side, phase, index, max_tokens)
                    )
                except openai.OpenAIError as exc:
                    failures[type(exc).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                tokens.append(answer.usage.completion_tokens if answer.usage else 0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(tokens),
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "seconds": round(elapsed, 2),
        "completion_tokens": sum(tokens),
        "tokens_per_s": round(sum(tokens) / elapsed, 1),
        "p50_latency_ms": round(_quantile(sorted(latencies), 0.5) * 1000, 1),
    }


async def time_to_first_token(
    side: Side, phase: int, requests: int, max_tokens: int
) -> dict[str, Any]:
    """``requests`` streamed requests one after another: time to the first chunk with text."""
    import openai

    ttfts: list[float] = []
    chunks: list[int] = []
    failures: Counter[str] = Counter()
    async with _client(side) as client:
        for index in range(requests):
            started = time.perf_counter()
            first: float | None = None
            count = 0
            try:
                stream = await client.chat.completions.create(
                    **_request(side, phase, index, max_tokens), stream=True
                )
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        count += 1
                        if first is None:
                            first = time.perf_counter() - started
            except openai.OpenAIError as exc:
                failures[type(exc).__name__] += 1
                continue
            if first is None:
                failures["no_content"] += 1
                continue
            ttfts.append(first)
            chunks.append(count)
    ordered = sorted(ttfts)
    return {
        "requests": len(ttfts),
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "p50_ttft_ms": round(_quantile(ordered, 0.5) * 1000, 1),
        "p90_ttft_ms": round(_quantile(ordered, 0.9) * 1000, 1),
        "content_chunks": sum(chunks),
    }


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))]


async def _warm_up(side: Side, max_tokens: int) -> None:
    """Loads the model (TextNLP loads it on the first request) and the code paths; not counted."""
    async with _client(side) as client:
        for index in range(2):
            await client.chat.completions.create(**_request(side, 0, index, max_tokens))
        stream = await client.chat.completions.create(
            **_request(side, 0, 2, max_tokens), stream=True
        )
        async for _ in stream:
            pass


def measure(
    side: Side, round_no: int, counts: tuple[int, int, int], max_tokens: int
) -> dict[str, Any]:
    asyncio.run(_warm_up(side, max_tokens))
    streamed, single, concurrent = counts
    base = (round_no + 1) * 100  # fresh prompts in every phase and round
    results = {
        "ttft_1": asyncio.run(time_to_first_token(side, base + 1, streamed, max_tokens)),
        "c1": asyncio.run(throughput(side, base + 2, 1, single, max_tokens)),
        "c16": asyncio.run(throughput(side, base + 3, 16, concurrent, max_tokens)),
    }
    for key, figures in results.items():
        print(f"  {side.name} {key}: {figures}", file=sys.stderr)
    return results


# -- the report ----------------------------------------------------------------------------------
FIGURES = {"ttft_1": "p50_ttft_ms", "c1": "tokens_per_s", "c16": "tokens_per_s"}


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per measurement: the median of the rounds' figure, every round's figures and the spread."""
    merged: dict[str, Any] = {}
    for key, figure in FIGURES.items():
        values = [r[key][figure] for r in rounds]
        median = statistics.median(values)
        merged[key] = {
            figure: round(median, 1),
            "rounds": [r[key] for r in rounds],
            "spread": round((max(values) - min(values)) / max(median, 1e-9), 3),
            "failed": sum(r[key]["failed"] for r in rounds),
        }
    return merged


def ratio(ours: dict[str, Any], theirs: dict[str, Any], key: str) -> dict[str, Any]:
    figure = FIGURES[key]
    value = ours[key][figure] / max(theirs[key][figure], 1e-9)
    noise = max(ours[key]["spread"], theirs[key]["spread"])
    return {"ratio": round(value, 3), "noise": noise, "beyond_noise": abs(value - 1) > noise}


def report(figures: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {**settings, **figures}
    if {"textnlp", "llama_cpp_python"} <= figures.keys():
        ours, theirs = figures["textnlp"], figures["llama_cpp_python"]
        ratios = {
            "tokens_per_s_1": ratio(ours, theirs, "c1"),
            "tokens_per_s_16": ratio(ours, theirs, "c16"),
            "p50_ttft_1": ratio(ours, theirs, "ttft_1"),
        }
        failed = sum(f[k]["failed"] for f in figures.values() for k in FIGURES)
        at_16 = ratios["tokens_per_s_16"]["ratio"] >= 1.0
        ttft = ratios["p50_ttft_1"]["ratio"] <= 1.2
        out["ratios"] = ratios
        out["targets"] = {
            "tokens_per_s_16_ratio_ge_1.0": {"value": ratios["tokens_per_s_16"]["ratio"],
                                             "ok": at_16},
            "p50_ttft_1_ratio_le_1.2": {"value": ratios["p50_ttft_1"]["ratio"], "ok": ttft},
            "failed_requests": {"value": failed, "ok": failed == 0},
            "ok": at_16 and ttft and failed == 0,
        }  # fmt: skip
    out["machine"] |= {"load_average_after": load_average()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4/4/16 requests: a smoke run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--only", nargs="+", default=None, choices=["textnlp", "llama_cpp_python"])
    args = parser.parse_args()

    counts = QUICK if args.quick else FULL
    model, weights = served_weights()
    sides: dict[str, Callable[[], AbstractContextManager[Side]]] = {
        "textnlp": lambda: textnlp_side(args.threads),
        "llama_cpp_python": lambda: llama_cpp_python_side(model, args.threads),
    }
    names = [n for n in sides if args.only is None or n in args.only]
    settings = {
        "machine": {
            "platform": f"{platform.machine()} {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
            "load_average_before": load_average(),
        },
        "settings": {
            "gguf": str(model),
            "weights": weights,
            "threads": args.threads,
            "max_tokens": args.max_tokens,
            "temperature": TEMPERATURE,
            "top_p": TOP_P,
            "rounds": args.rounds,
            "requests": dict(zip(["ttft_1", "c1", "c16"], counts, strict=True)),
            "quick": args.quick,
        },
    }
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    loads = settings["machine"]["load_average_at_each_server_start"] = []
    started = time.perf_counter()
    for round_no in range(args.rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for name in order:
            loads.append(load_average())
            print(f"round {round_no + 1}: {name} (load {loads[-1]})", file=sys.stderr)
            with sides[name]() as side:
                rounds[name].append(measure(side, round_no, counts, args.max_tokens))
    settings["settings"]["wall_s"] = round(time.perf_counter() - started, 1)
    figures = {name: merge(runs) for name, runs in rounds.items()}
    print(json.dumps(report(figures, settings), indent=2))


if __name__ == "__main__":
    main()
