"""A worker's trace, as a real process with tracing on (the console exporter): one delivery of
a job is one trace, a CONSUMER span with the job's SQL beneath it. Before, each SQL, queue
and storage call of a job was a trace of its own (71 traces for one job)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cluster import run_cli


def spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed, one after another."""
    decoder, found, at = json.JSONDecoder(), [], stdout.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(stdout, at)
        except json.JSONDecodeError:
            at = stdout.find("{", at + 1)
            continue
        if isinstance(value, dict) and "context" in value:
            found.append(value)
        at = stdout.find("{", end)
    return found


def test_one_delivery_of_a_job_is_one_trace(tmp_path: Path) -> None:
    submitted = run_cli(tmp_path, "jobs", "submit", "-t", "product-review", "-n", "3", "-m",
                        "fake-fast")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    tracing = {"TEXTNLP_OBSERVABILITY__TRACE_EXPORTER": "console"}
    worked = run_cli(tmp_path, "worker", "--once", "--wait", "0.3", env=tracing)
    assert worked.returncode == 0, worked.stderr
    found = spans(worked.stdout)
    (job,) = [s for s in found if s["name"] == "job generate"]
    assert job["kind"] == "SpanKind.CONSUMER" and job["parent_id"] is None
    assert job["attributes"]["job_id"] == job_id
    trace_id = job["context"]["trace_id"]
    beneath = [s for s in found if s["context"]["trace_id"] == trace_id and s is not job]
    assert any("SELECT" in s["name"] or "UPDATE" in s["name"] for s in beneath), [
        s["name"] for s in found
    ]
