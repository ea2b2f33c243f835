"""Batch-job benchmarks.

(a) A 200-record job through API (the real app, in process) -> queue (database table) ->
    worker (its own process-wide model pool) -> storage, timed from the POST until the status
    says succeeded, against, in the same run, the same 200 records generated directly by the
    dataset pipeline (``GenerationService.generate_dataset``). Both load the embedded model
    themselves (after one warm-up load, so the page cache is warm for both) and use no
    response cache; small ``max_tokens``. ``--rounds`` alternates the order of the two paths
    (direct first, then job first, ...) and reports the medians, so a change in the machine's
    load during the run does not land on one side only.
    The outside baseline, in the same run: what a user would write instead of a job, a script
    that sends the same records' prompts (the template's, with the variables and seeds the
    pipeline samples) to llama.cpp's ``llama-server -np 32`` (built as ``bench/load.py``
    builds it; skipped with the reason when it cannot be) from 32 concurrent clients and
    appends each answer to a JSONL file, timed from starting the server to the last line.
(b) The local queue's raw throughput: messages per second through send + receive + delete, on
    SQLite and (when it runs on 127.0.0.1:5432) PostgreSQL.

    python bench/jobs.py [--count 200] [--max-tokens 16] [--rounds 2] [--messages 500]
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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from textnlp.adapters.db.base import make_engine
from textnlp.adapters.db.schema import upgrade_database
from textnlp.adapters.queue.database import DatabaseQueue
from textnlp.bootstrap import Platform
from textnlp.config import Settings, load_settings
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.templates import TemplateLibrary, record_seed
from textnlp.services.generation import DatasetJob

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

MODEL = "smollm2-135m"
TEMPLATE = "product-review"
POSTGRES_URL = os.environ.get(
    "TEXTNLP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


async def direct(settings: Settings, count: int, max_tokens: int, out: Path) -> tuple[float, int]:
    """(seconds, completion tokens) of the direct pipeline."""
    started = time.perf_counter()
    async with Platform(settings) as platform:  # settings without a response cache
        summary = await platform.generation.generate_dataset(
            DatasetJob(TEMPLATE, count, out, MODEL, {"max_tokens": max_tokens}, seed=1)
        )
    return time.perf_counter() - started, summary.completion_tokens


def job_path(settings: Settings, count: int, max_tokens: int) -> tuple[float, dict[str, Any]]:
    from fastapi.testclient import TestClient

    from textnlp.api.app import create_app
    from textnlp.worker import Worker, WorkerOptions

    app = create_app(settings)
    with TestClient(app) as client:
        username = f"bench-{uuid.uuid4().hex[:8]}"  # one per round, same database
        app.state.auth.create_user(username, "bench password 123")
        login = client.post(
            "/api/v1/auth/login", json={"username": username, "password": "bench password 123"}
        ).json()
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        loop = asyncio.new_event_loop()
        platform = Platform(settings)
        worker = Worker(platform, WorkerOptions(wait_s=0.2))
        thread = threading.Thread(target=loop.run_until_complete, args=(worker.run(),))
        thread.start()
        try:
            started = time.perf_counter()
            job = client.post(
                "/api/v1/generate/batch",
                json={
                    "template": TEMPLATE,
                    "count": count,
                    "model": MODEL,
                    "params": {"max_tokens": max_tokens},
                    "seed": 1,
                },
                headers=headers,
            ).json()
            while True:
                status = client.get(f"/api/v1/generate/status/{job['id']}", headers=headers).json()
                if status["state"] in {"succeeded", "failed", "cancelled"}:
                    break
                time.sleep(0.25)  # a client polls now and then; a tight loop steals the GIL
            elapsed = time.perf_counter() - started
        finally:
            loop.call_soon_threadsafe(worker.request_stop)
            thread.join(60)
            loop.run_until_complete(platform.aclose())
            loop.close()
    return elapsed, status


def llama_server_script(binary: Path, count: int, max_tokens: int, out: Path) -> tuple[float, int]:
    """A user's batch script against llama-server; returns (seconds, completion tokens), the
    server's start included, as both TextNLP paths include their model load."""
    import httpx

    from bench.load import llama_server, served_weights
    from textnlp.backends.registry import ModelCatalogue

    template = TemplateLibrary.load().get(TEMPLATE)
    request = DatasetRequest(template, count, out, params={"max_tokens": max_tokens}, seed=1)
    params = DatasetPipeline.resolve(ModelCatalogue.load().get(MODEL), request)
    bodies = []
    for index in range(count):
        variables = template.sample_variables(request.seed, index, {})
        system, user = template.render(variables)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}
        ]
        bodies.append(
            {
                "messages": messages,
                "max_tokens": params.max_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "seed": record_seed(request.seed, index),
            }
        )
    model, _ = served_weights()
    tokens = 0
    started = time.perf_counter()
    with llama_server(binary, model) as server, out.open("w") as sink:

        async def send_all() -> None:
            todo = iter(enumerate(bodies))
            async with httpx.AsyncClient(timeout=600) as client:

                async def client_loop() -> None:
                    nonlocal tokens
                    for index, body in todo:
                        answer = (await client.post(server.url, json=body)).raise_for_status()
                        tokens += answer.json()["usage"]["completion_tokens"]
                        text = answer.json()["choices"][0]["message"]["content"]
                        sink.write(json.dumps({"index": index, "text": text}) + "\n")

                await asyncio.gather(*(client_loop() for _ in range(32)))

        asyncio.run(send_all())
    elapsed = time.perf_counter() - started
    lines = out.read_text().count("\n")
    assert lines == count, f"the script wrote {lines} of {count} records"
    return elapsed, tokens


def queue_throughput(url: str, messages: int) -> float:
    engine = make_engine(url)
    queue = DatabaseQueue(engine, f"bench-{uuid.uuid4().hex[:8]}", dead_letter_queue="bench-dlq")
    started = time.perf_counter()
    for i in range(messages):
        queue.send(f'{{"n": {i}}}', group_id=str(i), dedup_id=str(i))
    done = 0
    while done < messages:
        for message in queue.receive(10):
            queue.delete(message)
            done += 1
    elapsed = time.perf_counter() - started
    engine.dispose()
    return messages / elapsed


def postgres_url() -> str | None:
    schema = f"bench_jobs_{uuid.uuid4().hex[:8]}"
    try:
        engine = make_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception:
        return None
    return f"{POSTGRES_URL}?options=-csearch_path={schema}"


def drop_schema(url: str) -> None:
    schema = url.rsplit("=", 1)[-1]
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = load_settings(
            home=home, generation={"response_cache": False}, queue={"chunk_size": 32}
        )
        upgrade_database(settings.database_url)
        asyncio.run(direct(settings, 8, args.max_tokens, Path(tmp) / "warm.jsonl"))  # warm-up
        direct_runs: list[float] = []
        direct_tokens = 0
        job_runs: list[float] = []
        for round_ in range(args.rounds):
            out = Path(tmp) / f"direct-{round_}.jsonl"
            if round_ % 2 == 0:
                seconds, direct_tokens = asyncio.run(
                    direct(settings, args.count, args.max_tokens, out)
                )
                direct_runs.append(seconds)
            job_s, status = job_path(settings, args.count, args.max_tokens)
            job_runs.append(job_s)
            if round_ % 2 == 1:
                seconds, direct_tokens = asyncio.run(
                    direct(settings, args.count, args.max_tokens, out)
                )
                direct_runs.append(seconds)
        direct_s, job_s = statistics.median(direct_runs), statistics.median(job_runs)
        from bench.llama_tools import build_llama_server

        binary, why_not = build_llama_server()
        scripts = [
            llama_server_script(binary, args.count, args.max_tokens, Path(tmp) / f"ls-{r}.jsonl")
            for r in range(args.rounds if binary is not None else 0)
        ]
        script_runs = [seconds for seconds, _ in scripts]
        sqlite_url = f"sqlite:///{Path(tmp) / 'queue.db'}"
        upgrade_database(sqlite_url)
        throughput: dict[str, float | None] = {
            "sqlite": round(queue_throughput(sqlite_url, args.messages), 1)
        }
        pg = postgres_url()
        if pg is not None:
            try:
                upgrade_database(pg)
                throughput["postgresql"] = round(queue_throughput(pg, args.messages), 1)
            finally:
                drop_schema(pg)
        else:
            throughput["postgresql"] = None
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.system()}",
                "job": {
                    "records": args.count,
                    "max_tokens": args.max_tokens,
                    "model": MODEL,
                    "state": status["state"],
                    "done": status["progress"]["done"],
                    "job_path_s": round(job_s, 2),
                    "direct_pipeline_s": round(direct_s, 2),
                    "job_path_rounds": [round(s, 2) for s in job_runs],
                    "direct_rounds": [round(s, 2) for s in direct_runs],
                    "ratio": round(job_s / direct_s, 3),
                    "target_ratio": 1.10,
                    "noise": _spread(job_runs, direct_runs),
                    "llama_server_script_s": round(statistics.median(script_runs), 2)
                    if script_runs
                    else None,
                    "llama_server_script_rounds": [round(s, 2) for s in script_runs],
                    "llama_server_skipped": why_not or None,
                    # The same records' answers, but each side samples its own tokens and
                    # stops at its own end-of-sequence: the work done, to read the times by.
                    "completion_tokens": {
                        "textnlp": direct_tokens,
                        "llama_server_script": scripts[-1][1] if scripts else None,
                    },
                    "job_over_llama_server_script": round(job_s / statistics.median(script_runs), 3)
                    if script_runs
                    else None,
                },
                "local_queue_msgs_per_s": throughput,
                "queue_messages": args.messages,
            },
            indent=2,
        )
    )


def _spread(*sides: list[float]) -> float | None:
    """The noise of a ratio: the largest relative spread of either side's rounds (None with a
    single round, which tells nothing of the noise)."""
    if any(len(r) < 2 for r in sides):
        return None
    return round(max((max(r) - min(r)) / min(r) for r in sides if r), 3)


if __name__ == "__main__":
    main()
