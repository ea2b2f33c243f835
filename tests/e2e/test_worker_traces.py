"""A worker's trace, as a real process with tracing on (the console exporter): one delivery of
a job is one trace, a CONSUMER span with the job's SQL beneath it. Before, each SQL, queue
and storage call of a job was a trace of its own (71 traces for one job)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.real_cli import run_cli
from tests.support.serve import ServeUser, serve


def spans(output: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed, one after another."""
    decoder, found, at = json.JSONDecoder(), [], output.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(output, at)
        except json.JSONDecodeError:
            at = output.find("{", at + 1)
            continue
        if isinstance(value, dict) and "context" in value:
            found.append(value)
        at = output.find("{", end)
    return found


def test_one_delivery_of_a_job_is_one_trace(tmp_path: Path) -> None:
    submitted = run_cli(
        tmp_path, "jobs", "submit", "-t", "product-review", "-n", "3", "--param", "max_tokens=4"
    )  # fmt: skip (the embedded model)
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    tracing = {"TEXTNLP_OBSERVABILITY__TRACE_EXPORTER": "console"}
    worked = run_cli(tmp_path, "worker", "--once", "--wait", "0.3", env=tracing)
    assert worked.returncode == 0, worked.stderr
    found = spans(worked.stderr)  # stdout is the command's own
    (job,) = [s for s in found if s["name"] == "job generate"]
    assert job["kind"] == "SpanKind.CONSUMER" and job["parent_id"] is None
    assert job["attributes"]["job_id"] == job_id
    trace_id = job["context"]["trace_id"]
    beneath = [s for s in found if s["context"]["trace_id"] == trace_id and s is not job]
    assert any("SELECT" in s["name"] or "UPDATE" in s["name"] for s in beneath), [
        s["name"] for s in found
    ]


@pytest.mark.slow
def test_a_job_continues_the_trace_of_the_request_that_submitted_it(tmp_path: Path) -> None:
    """``textnlp serve`` and ``textnlp worker`` as processes, tracing on: the job's message
    carries the submitting request's trace, and the worker's span of the job is in it (it was
    a trace of its own, so X-Ray never showed a job under the request that made it)."""
    tracing = {"TEXTNLP_OBSERVABILITY__TRACE_EXPORTER": "console"}
    user = ServeUser("tracer", "a long enough password 7")
    with serve(tmp_path, users=[user], env=tracing) as server:
        key = server.api_key("tracer")
        submitted = httpx.post(
            f"{server.url}/api/v1/generate/batch",
            json={"prompts": ["Say hi."], "params": {"max_tokens": 4}},
            headers={
                "Authorization": f"Bearer {key}",
                "X-Amzn-Trace-Id": (
                    "Root=1-6759e988-cd862e3fe1be46a994272793;Parent=63995c3f42cd8ad8;Sampled=1"
                ),
            },
            timeout=60,
        )
        assert submitted.status_code == 202, submitted.text
        worked = server.work()
    (job,) = [s for s in spans(worked.stderr) if s["name"] == "job generate"]
    assert job["attributes"]["job_id"] == submitted.json()["id"]
    assert job["context"]["trace_id"] == "0x6759e988cd862e3fe1be46a994272793"
    assert job["parent_id"] is not None
