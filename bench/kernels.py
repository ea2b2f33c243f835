"""llama.cpp's AVX-512 kernels against its AVX2 ones, on this CPU, in one run.

The Makefile builds the llama-cpp-python wheel with the kernels this CPU has (``make
llama-kernels``). This script builds (once, into the wheelhouse: ``make llama-wheel``) or finds
both wheels, installs each into a folder of its own, and times, in a subprocess per build,
rounds alternating between the two:

- ``loop_prefill`` / ``loop_decode``: what a plain llama-cpp-python loop does, one ``Llama`` on
  the shipped GGUF: a 150-token prompt, then 64 tokens one at a time (tokens/s);
- ``engine_decode_16`` / ``engine_decode_32``: one step of TextNLP's engine (the catalogue's Q8_0
  re-encoding) with 16 or 32 sequences decoding a token each over 200 cached tokens (tokens/s);
- ``engine_prefill``: one step with 4 prompts of 48 tokens (tokens/s).

Each figure is the median of the rounds; ``ratio`` is AVX-512's rate over AVX2's (above 1:
faster) and ``noise`` each side's spread over its rounds. On a CPU without AVX-512 it says so and
compares nothing.

    python bench/kernels.py [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import spread  # noqa: E402
from bench.llama_tools import REPO, llama_kernels  # noqa: E402

MEASURES = ("loop_prefill", "loop_decode", "engine_decode_16", "engine_decode_32", "engine_prefill")
PROMPT, DECODED = 150, 64  # the loop's prompt and decoded tokens


def probe(threads: int) -> dict[str, float]:
    """The rates of the llama_cpp this interpreter imports (run in a subprocess per build)."""
    import llama_cpp

    from bench.engine_steps import CHUNK, FilledEngine
    from textnlp.backends.llamacpp import resolve_model_path

    shipped = resolve_model_path("embedded:smollm2")
    rates: dict[str, float] = {}
    filled = FilledEngine(threads)
    try:
        tokens = filled.tokens

        def median_step(rows: dict[int, list[int]], rounds: int) -> float:
            return statistics.median(filled.step(rows) for _ in range(rounds))

        for n in (16, 32):
            rates[f"engine_decode_{n}"] = n / median_step(dict.fromkeys(range(n), tokens[:1]), 9)
        prompts = dict.fromkeys(range(4), tokens[:CHUNK])
        rates["engine_prefill"] = 4 * CHUNK / median_step(prompts, 5)
    finally:
        filled.close()
    llm = llama_cpp.Llama(
        str(shipped), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    prefill, decode = [], []
    for _ in range(3):
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens[:PROMPT])
        prefill.append(time.perf_counter() - started)
        started = time.perf_counter()
        for token in tokens[:DECODED]:
            llm.eval([token])
        decode.append(time.perf_counter() - started)
    rates["loop_prefill"] = PROMPT / statistics.median(prefill)
    rates["loop_decode"] = DECODED / statistics.median(decode)
    return rates


def install(kernels: str, into: Path) -> None:
    """The wheelhouse's wheel for ``kernels`` (built there first when missing), into ``into``."""
    env = {**os.environ, "LLAMA_KERNELS": kernels}
    make = ["make", "-s", "--no-print-directory", "-C", str(REPO), "llama-wheel"]
    built = subprocess.run(make, env=env, check=True, capture_output=True, text=True, timeout=3600)
    wheel = next(Path(built.stdout.split()[-1]).glob("llama_cpp_python-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(into), str(wheel)], check=True, timeout=600)  # fmt: skip


def run_probe(site: Path, threads: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    command = [sys.executable, __file__, "--probe", "--threads", str(threads)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.threads)))
        return
    mine = llama_kernels()[0]
    if not mine.startswith("avx512"):
        print(json.dumps({"kernels": mine, "skipped": "this CPU has no AVX-512: one build only"}))
        return
    with tempfile.TemporaryDirectory(prefix="textnlp-kernels-") as tmp:
        sites = {kernels: Path(tmp) / kernels for kernels in ("avx2", "avx512")}
        for kernels, site in sites.items():
            install(kernels, site)
        rounds: dict[str, list[dict[str, float]]] = {kernels: [] for kernels in sites}
        for _ in range(args.rounds):
            for kernels, site in sites.items():
                rounds[kernels].append(run_probe(site, args.threads))
    avx2, avx512 = rounds["avx2"], rounds["avx512"]
    figures = {}
    for measure in MEASURES:
        old = [r[measure] for r in avx2]
        new = [r[measure] for r in avx512]
        figures[measure] = {
            "avx2_tok_s": round(statistics.median(old), 1),
            f"{mine}_tok_s": round(statistics.median(new), 1),
            "ratio": round(statistics.median(new) / statistics.median(old), 3),
            "noise": {"avx2": spread(old), mine: spread(new)},
        }
    print(json.dumps({"kernels": mine, "rounds": args.rounds, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
