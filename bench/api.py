"""API benchmark: the TextNLP API against a bare Starlette app answering the same JSON.

Both run under uvicorn in their own process on 127.0.0.1; this process is the load generator
(asyncio, raw HTTP/1.1 keep-alive connections, so the client costs little). Measured, each for
at most ``--seconds`` or ``--requests``:

* ``GET /api/v1/admin/health`` vs the bare app's same JSON. The app probes the database and
  cache at most once per ``PROBE_TTL_S`` and renders the report once per new result, so this
  measures what a probe storm costs (routing, middleware, a memoised body); what one fresh
  report costs (the probes themselves) is measured apart, in this process, as ``fresh_probe``;
* a cached ``POST /api/v1/generate/text`` (temperature 0, authenticated, rate-limited, answered
  from the response cache) vs the bare app answering that JSON to the same POST.

Each measurement runs ``--rounds`` times, the two apps alternating which goes first; each figure
is the median of its rounds, with the rounds beside it, and a ratio's ``noise`` is the larger of
the two apps' spreads of requests/s (range over median; null with one round).

Prints JSON: requests/s, p50/p99 latency in ms, error counts and the ratios. Targets (issue 4):
health at least 0.5x the bare app's requests/s; cached generate p99 under 10 ms; no answer of
either app an error (a fast 4xx/5xx would flatter the figures; ``targets.ok`` is false then).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import beyond, spread, widest  # noqa: E402
from tests.conftest import free_port, wait_for_port  # noqa: E402

BARE_APP = """
import json, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
health = sys.argv[2].encode()
completion = sys.argv[3].encode()
async def h(request): return Response(health, media_type="application/json")
async def g(request):
    await request.body()
    return Response(completion, media_type="application/json")
app = Starlette(routes=[
    Route("/api/v1/admin/health", h),
    Route("/api/v1/generate/text", g, methods=["POST"]),
])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

API_APP = """
import sys
import uvicorn
from textnlp.api.app import create_app
from textnlp.config import load_settings
app = create_app(load_settings(), configure_logs=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
"""


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def load(
    port: int, raw: bytes, concurrency: int, seconds: float, limit: int
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline and len(latencies) < limit:
                started = time.perf_counter()
                status = await _one(reader, writer, raw)
                latencies.append(time.perf_counter() - started)
                errors += status >= 400
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": errors,
        "requests_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


def rounds_of(
    measure: Callable[[int, bytes, int], dict[str, float]],
    ports: dict[str, int],
    raw: bytes,
    concurrency: int,
    rounds: int,
) -> dict[str, Any]:
    """Each app measured ``rounds`` times, alternating which goes first: per app the median of
    every figure, the rounds beside it; the ratio of requests/s and its noise."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
    for round_ in range(rounds):
        for name in list(ports)[:: 1 if round_ % 2 == 0 else -1]:
            runs[name].append(measure(ports[name], raw, concurrency))
    figures: dict[str, Any] = {}
    for name, done in runs.items():
        rates = [r["requests_per_s"] for r in done]
        figures[name] = {
            "requests": sum(int(r["requests"]) for r in done),
            "errors": sum(int(r["errors"]) for r in done),
            **{
                key: round(statistics.median(r[key] for r in done), 3)
                for key in ("requests_per_s", "p50_ms", "p99_ms")
            },
            "rounds": [{k: r[k] for k in ("requests_per_s", "p50_ms", "p99_ms")} for r in done],
            "spread": spread(rates),
        }
    ratio = round(figures["api"]["requests_per_s"] / figures["bare"]["requests_per_s"], 3)
    noise = widest(figures["api"]["spread"], figures["bare"]["spread"])
    return {**figures, "rps_ratio": ratio, "noise": noise, "beyond_noise": beyond(ratio, noise)}


def request(method: str, path: str, body: bytes = b"", token: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def start(code: str, *args: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, timeout=60, proc=proc)
    return proc, port


def fresh_probe(home: str, rounds: int = 200) -> dict[str, float]:
    """What one un-memoised health report costs: the probes of ``HealthChecker``, in process."""
    from textnlp.api.health import HealthChecker
    from textnlp.bootstrap import Platform
    from textnlp.config import load_settings

    platform = Platform(load_settings(home=Path(home)))
    try:
        checker = HealthChecker(platform)
        checker._probe()  # connect first
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            checks, _models = checker._probe()  # the dependencies, and each model's state
            timings.append(time.perf_counter() - started)
        down = [name for name, check in checks.items() if check.status == "down"]
    finally:
        asyncio.run(platform.aclose())
    return {
        "rounds": rounds,
        "p50_ms": round(statistics.median(timings) * 1000, 3),
        "max_ms": round(max(timings) * 1000, 3),
        "down": len(down),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--generate-concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="2 or more for the noise")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")

    import httpx

    home = tempfile.mkdtemp(prefix="textnlp-bench-api-")
    env = {**os.environ, "TEXTNLP_HOME": home}
    subprocess.run(
        [sys.executable, "-m", "textnlp.cli.main", "users", "create", "bench", "--password-stdin"],
        input=b"bench-password\n",
        env=env,
        check=True,
        capture_output=True,
    )
    api, api_port = start(API_APP, env=env)
    procs = [api]
    try:
        base = f"http://127.0.0.1:{api_port}/api/v1"
        token = httpx.post(
            f"{base}/auth/login", json={"username": "bench", "password": "bench-password"}
        ).json()["access_token"]
        body = json.dumps({"prompt": "Say hello.", "max_tokens": 8, "temperature": 0}).encode()
        warm = httpx.post(
            f"{base}/generate/text",
            content=body,
            timeout=300,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ).text
        health_json = httpx.get(f"{base}/admin/health").text
        bare, bare_port = start(BARE_APP, health_json, warm, env=env)
        procs.append(bare)

        health_req = request("GET", "/api/v1/admin/health")
        gen_req = request("POST", "/api/v1/generate/text", body, token)

        def measure(port: int, raw: bytes, concurrency: int) -> dict[str, float]:
            return asyncio.run(load(port, raw, concurrency, args.seconds, args.requests))

        ports = {"api": api_port, "bare": bare_port}
        results: dict[str, dict[str, Any]] = {
            "health": rounds_of(measure, ports, health_req, args.concurrency, args.rounds),
            "cached_generate": rounds_of(
                measure, ports, gen_req, args.generate_concurrency, args.rounds
            ),
        }
        results["health"]["fresh_probe"] = fresh_probe(home)
        machine = f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}"
        errors = sum(
            side["errors"]
            for figures in results.values()
            for side in (figures["api"], figures["bare"])
        )
        print(
            json.dumps(
                {
                    "machine": machine,
                    "rounds": args.rounds,
                    "concurrency": {
                        "health": args.concurrency,
                        "generate": args.generate_concurrency,
                    },
                    **results,
                    "targets": {
                        "errors": errors,
                        "ok": errors == 0
                        and results["health"]["rps_ratio"] >= 0.5
                        and results["cached_generate"]["api"]["p99_ms"] < 10,
                        "health_rps_ratio_min": 0.5,
                        "health_ok": results["health"]["rps_ratio"] >= 0.5,
                        "cached_generate_p99_ms_max": 10,
                        "cached_generate_ok": results["cached_generate"]["api"]["p99_ms"] < 10,
                    },
                },
                indent=2,
            )
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
