"""Console benchmark (issue 17): how long two console pages take to render, server side,
against the JSON API call each replaces, in one run.

* **jobs page**: ``GET /console/jobs`` (the user's latest 50 jobs, with the submit form) against
  ``GET /api/v1/generate/batch`` (the same 50 jobs as JSON);
* **dataset viewer**: ``GET /console/jobs/{id}/records``, the first 50 records of a
  100,000-record job, against the closest JSON equivalent. The API has **no JSON route for a
  job's records** (only the result file's download), so the baseline is the same service call
  (``JobService.records_page``) answered as JSON: (a) by a route added to this benchmark's app
  only, ``GET /bench/records/{id}``, authenticated with a bearer token and serialised by FastAPI
  as the API's own job routes are (a ``def`` route with a ``response_model``): the page's twin;
  (b) in process, the bare service call and ``model_dump_json`` of the records, no HTTP at all.

Both sides run in one app on this process's event loop (FastAPI's ``TestClient``), each the
same user. "Server side" is measured by an ASGI wrapper around the app: from the request's
arrival to its last body byte (the test client's own work is left out; it is reported apart as
``client_ms``). Requests alternate between the two sides, after a warm-up, in ``--blocks``
blocks: each figure is the median of all samples with its 10th-90th percentile spread, and the
ratio (page / JSON) is given overall and per block (min, median, max: the noise).

The 100k-record job is written straight into a database of the benchmark's own: a temporary
SQLite file, and (``--database postgres`` or ``both``, the default when PostgreSQL answers on
127.0.0.1:5432) a PostgreSQL database created for the run and dropped after it. Target
(issue 17): each ratio at most 1.5.

    python bench/console.py [--records 100000] [--samples 300] [--blocks 5] [--database both]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import create_engine, insert, text, update

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from tests.conftest import POSTGRES_URL, port_open  # noqa: E402
from textnlp.adapters.db.base import make_engine  # noqa: E402
from textnlp.adapters.db.jobs import JobRecordRow, JobRow  # noqa: E402
from textnlp.adapters.db.schema import upgrade_database  # noqa: E402
from textnlp.api.deps import CurrentUser  # noqa: E402
from textnlp.domain import Record  # noqa: E402
from textnlp.domain.generation import GenerationParams  # noqa: E402
from textnlp.domain.records import Provenance  # noqa: E402
from textnlp.services.job_models import Owner  # noqa: E402
from textnlp.services.job_records import RecordQuery  # noqa: E402
from textnlp.services.jobs import JobService  # noqa: E402

PASSWORD = "bench password 123"
TARGET = 1.5
PAGE_SIZE = 50
LIST_JOBS = 50
WORDS = (
    "The kettle boils fast, the handle stays cool and the lid opens with one hand; after "
    "three weeks of daily use it still looks new, although the cable could be longer and "
    "the light is too bright at night. "
)


# -- the data ------------------------------------------------------------------------------------
def record(index: int) -> Record:
    """A realistic record: a review of ~400 characters, two labels, full provenance; 1 % failed."""
    failed = index % 100 == 99
    return Record(
        index=index,
        status="failed" if failed else "ok",
        text="" if failed else f"Review {index}: " + WORDS * 2,
        variables={
            "sentiment": ("positive", "negative", "neutral")[index % 3],
            "product": ("kettle", "toaster", "blender", "lamp")[index % 4],
        },
        error="Timeout: backend smollm2-135m timed out after 60 s" if failed else None,
        provenance=Provenance(
            template_id="product-review",
            template_version="3",
            model="smollm2-135m",
            params=GenerationParams(max_tokens=128, temperature=0.8, seed=index),
            seed=index,
            prompt_tokens=52,
            completion_tokens=96,
            finish_reason="error" if failed else "stop",
            latency_s=0.412,
            created_at="2026-12-04T20:00:00+00:00",
            cost_usd=None,
        ),
    )


def build(database_url: str, owner_id: str, records: int) -> str:
    """The user's 50 jobs, the newest holding ``records`` records; its id."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    big = uuid.uuid4().hex
    try:
        with engine.begin() as connection:
            for n in range(LIST_JOBS):
                job_id = big if n == LIST_JOBS - 1 else uuid.uuid4().hex
                total = records if job_id == big else 200
                connection.execute(
                    insert(JobRow).values(
                        id=job_id,
                        owner_id=owner_id,
                        state="succeeded" if n % 5 else "failed",
                        spec={"template": "product-review", "count": total, "format": "jsonl"},
                        queue="textnlp-batch",
                        total=total,
                        done=total,
                        failed_records=0,
                        attempts=1,
                        error=None if n % 5 else "failed after 3 attempts: Timeout",
                        created_at=now.replace(microsecond=n),
                        started_at=now,
                        finished_at=now,
                    )
                )
        chunk = 5_000
        for start in range(0, records, chunk):
            rows = [
                {"job_id": big, "index": i, "ok": r.status == "ok", "payload": r.model_dump_json()}
                for i in range(start, min(start + chunk, records))
                for r in (record(i),)
            ]
            with engine.begin() as connection:
                connection.execute(insert(JobRecordRow), rows)
        with engine.begin() as connection:
            connection.execute(
                update(JobRow).where(JobRow.id == big).values(failed_records=records // 100)
            )
            if engine.dialect.name == "postgresql":
                connection.execute(text("ANALYZE job_records"))
                connection.execute(text("ANALYZE jobs"))
    finally:
        engine.dispose()
    return big


# -- timing --------------------------------------------------------------------------------------
class ServerTimer:
    """ASGI wrapper: how long the app took for the last HTTP request, from its arrival to the
    last byte of its body (the server side, without the test client)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = time.perf_counter() - started
            await send(message)

        await self.app(scope, receive, timed)


def figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "median": round(statistics.median(ordered) * 1000, 3),
        "p10": round(at(0.1) * 1000, 3),
        "p90": round(at(0.9) * 1000, 3),
    }


def compare(
    sides: dict[str, Callable[[], float]], samples: int, blocks: int, warmup: int
) -> dict[str, Any]:
    """Alternate the sides ``samples`` times (in ``blocks``); each call returns its seconds."""
    for _ in range(warmup):
        for call in sides.values():
            call()
    taken: dict[str, list[list[float]]] = {name: [] for name in sides}
    per_block = max(1, samples // blocks)
    for _ in range(blocks):
        for name in sides:
            taken[name].append([])
        for _ in range(per_block):
            for name, call in sides.items():
                taken[name][-1].append(call())
    return taken


def ratio_figures(page: list[list[float]], baseline: list[list[float]]) -> dict[str, Any]:
    flat_page = [s for block in page for s in block]
    flat_base = [s for block in baseline for s in block]
    per_block = sorted(
        statistics.median(p) / statistics.median(b) for p, b in zip(page, baseline, strict=True)
    )
    return {
        "ratio": round(statistics.median(flat_page) / statistics.median(flat_base), 3),
        "ratio_blocks": {
            "min": round(per_block[0], 3),
            "median": round(statistics.median(per_block), 3),
            "max": round(per_block[-1], 3),
        },
    }


# -- the viewer's JSON twin ----------------------------------------------------------------------
class RecordsAnswer(BaseModel):
    records: list[Record]
    offset: int | None
    has_more: bool


def add_json_twin(app: FastAPI) -> None:
    """``GET /bench/records/{id}``: the viewer's first page as JSON, the way the API's job
    routes answer (bearer token, a ``def`` route, a ``response_model``); this app only."""

    @app.get("/bench/records/{job_id}", response_model=RecordsAnswer)
    def bench_records(job_id: str, request: Request, user: CurrentUser) -> RecordsAnswer:
        jobs: JobService = request.app.state.jobs
        owner = Owner(id=str(user.id), is_admin=bool(user.is_admin))
        found = jobs.records_page(owner, job_id, RecordQuery())
        return RecordsAnswer(records=found.records, offset=found.offset, has_more=found.has_more)


# -- one database --------------------------------------------------------------------------------
def measure(database_url: str, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from textnlp.api.app import create_app
    from textnlp.config import load_settings

    upgrade_database(database_url)
    settings = load_settings(
        home=home,
        database={"url": database_url},
        # The benchmark is one user sending thousands of requests: no rate limit in the way.
        api={"rate_limit_per_s": 1e9, "rate_limit_burst": 10**9},
    )
    app = create_app(settings)
    add_json_twin(app)
    timer = ServerTimer(app)
    with TestClient(timer, follow_redirects=False) as client:
        user = app.state.auth.create_user("bench", PASSWORD)
        started = time.perf_counter()
        big = build(database_url, str(user.id), args.records)
        build_s = time.perf_counter() - started

        login = client.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]*)"', login.text)
        assert token is not None
        answer = client.post(
            "/console/login",
            data={"csrf_token": token.group(1), "username": "bench", "password": PASSWORD},
        )
        assert answer.status_code == 303, answer.text
        # The session's cookies stay in the client: their path is /console, so the API's
        # routes never see them (and the console's never see the bearer header).
        bearer = client.post(
            "/api/v1/auth/login", json={"username": "bench", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {bearer}"}

        sizes: dict[str, int] = {}
        client_times: dict[str, list[float]] = {}

        def get(name: str, path: str, **kw: Any) -> Callable[[], float]:
            client_times[name] = []

            def call() -> float:
                began = time.perf_counter()
                response = client.get(path, **kw)
                client_times[name].append(time.perf_counter() - began)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                sizes[name] = len(response.content)
                return timer.last

            return call

        records_path = f"/console/jobs/{big}/records"
        page_first = client.get(records_path)
        shown = re.findall(r'<li class="record" id="record-(\d+)">', page_first.text)
        assert [int(i) for i in shown] == list(range(PAGE_SIZE)), shown[:5]
        listed = client.get("/api/v1/generate/batch", headers=headers).json()
        assert len(listed) == LIST_JOBS and listed[0]["id"] == big

        jobs: JobService = app.state.jobs
        owner = Owner(id=str(user.id))

        def service_json() -> float:
            began = time.perf_counter()
            found = jobs.records_page(owner, big, RecordQuery())
            body = RecordsAnswer(records=found.records, offset=found.offset, has_more=False)
            sizes["service_json"] = len(body.model_dump_json())
            return time.perf_counter() - began

        list_taken = compare(
            {
                "console": get("jobs_console", "/console/jobs"),
                "api": get("jobs_api", "/api/v1/generate/batch", headers=headers),
            },
            args.samples,
            args.blocks,
            args.warmup,
        )
        records_taken = compare(
            {
                "console": get("records_console", records_path),
                "json_route": get("records_json", f"/bench/records/{big}", headers=headers),
                "service_json": service_json,
            },
            args.samples,
            args.blocks,
            args.warmup,
        )

    def flat(blocks: list[list[float]]) -> list[float]:
        return [s for block in blocks for s in block]

    return {
        "build_s": round(build_s, 1),
        "jobs_page": {
            "console_ms": figures(flat(list_taken["console"])),
            "api_ms": figures(flat(list_taken["api"])),
            **ratio_figures(list_taken["console"], list_taken["api"]),
            "client_ms": {
                "console": figures(client_times["jobs_console"]),
                "api": figures(client_times["jobs_api"]),
            },
            "bytes": {"console": sizes["jobs_console"], "api": sizes["jobs_api"]},
        },
        "dataset_viewer": {
            "console_ms": figures(flat(records_taken["console"])),
            "json_route_ms": figures(flat(records_taken["json_route"])),
            "service_json_ms": figures(flat(records_taken["service_json"])),
            **ratio_figures(records_taken["console"], records_taken["json_route"]),
            "ratio_to_service_json": ratio_figures(
                records_taken["console"], records_taken["service_json"]
            ),
            "client_ms": {
                "console": figures(client_times["records_console"]),
                "json_route": figures(client_times["records_json"]),
            },
            "bytes": {
                "console": sizes["records_console"],
                "json_route": sizes["records_json"],
                "service_json": sizes["service_json"],
            },
        },
    }


def postgres_database() -> tuple[str, Callable[[], None]] | None:
    """A database of the benchmark's own on the local PostgreSQL, and how to drop it."""
    if not port_open("127.0.0.1", 5432):
        return None
    name = f"textnlp_bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, query = POSTGRES_URL.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300, help="requests per side")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "both"],
        default="both" if port_open("127.0.0.1", 5432) else "sqlite",
    )
    args = parser.parse_args()

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="textnlp-bench-console-") as tmp:
        if args.database in {"sqlite", "both"}:
            home = Path(tmp) / "sqlite"
            url = f"sqlite:///{(Path(tmp) / 'console.db').as_posix()}"
            results["sqlite"] = measure(url, home, args)
        if args.database in {"postgres", "both"}:
            made = postgres_database()
            if made is None:
                results["postgres"] = {"skipped": "PostgreSQL is not running on 127.0.0.1:5432"}
            else:
                url, drop = made
                try:
                    results["postgres"] = measure(url, Path(tmp) / "postgres", args)
                finally:
                    drop()

    measured = [r for r in results.values() if "skipped" not in r]
    ratios = [r[page]["ratio"] for r in measured for page in ("jobs_page", "dataset_viewer")]
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(
        json.dumps(
            {
                "machine": machine,
                "records": args.records,
                "samples_per_side": args.samples // args.blocks * args.blocks,
                "blocks": args.blocks,
                "baseline_note": (
                    "the API has no JSON route for a job's records: the viewer's baseline is "
                    "JobService.records_page answered as JSON by a route of this benchmark's "
                    "app (json_route, the ratio) and, in process, the bare service call plus "
                    "JSON serialisation (service_json)"
                ),
                **results,
                "targets": {"ratio_max": TARGET, "ok": bool(ratios) and max(ratios) <= TARGET},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
