"""The journey's batch-job helpers: submit, poll, download, and read what landed in S3."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from rehearsal.journey import Session, StepFailed, expect

API = "/api/v1"
FINAL = ("succeeded", "failed", "cancelled")


def lenient_gate() -> dict[str, Any]:
    """A validation gate that passes any non-empty result (8-token outputs fail the quality
    rules): every rate may reach 1, every diversity 0. Thresholds rather than nulls, since a
    null ("rule off") does not survive the job's storage (its spec is stored without nulls)."""
    try:
        from textnlp.validation.gate import Gate
    except ImportError:
        return {}
    return {name: 1 if name.startswith("max_") or name == "min_records" else 0
            for name in Gate.model_fields}


def submit(session: Session, body: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = expect(
        session.gateway().post(f"{API}/generate/batch", headers=session.bearer(), json=body),
        (200, 201, 202), "POST /generate/batch")
    return view


def status(session: Session, job_id: str) -> dict[str, Any]:
    view: dict[str, Any] = expect(
        session.gateway().get(f"{API}/generate/status/{job_id}", headers=session.bearer()),
        200, f"GET /generate/status/{job_id}")
    return view


def wait(session: Session, job_id: str, timeout_s: float,
         until: Callable[[dict[str, Any]], bool] | None = None,
         poll_s: float = 0.5) -> dict[str, Any]:
    """Poll the job's status until `until` (default: a final state); StepFailed on timeout."""
    done = until or (lambda view: view["state"] in FINAL)
    deadline = time.monotonic() + timeout_s
    view = status(session, job_id)
    while not done(view):
        if view["state"] in FINAL:
            raise StepFailed(f"job {job_id} ended {view['state']}: {view.get('error')}")
        if time.monotonic() > deadline:
            raise StepFailed(f"job {job_id} still {view['state']} ({_progress(view)}) after "
                             f"{timeout_s:.0f}s")
        time.sleep(poll_s)
        view = status(session, job_id)
    return view


def _progress(view: dict[str, Any]) -> str:
    progress = view.get("progress") or {}
    return f"{progress.get('done')}/{progress.get('total')}"


def list_jobs(session: Session) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = expect(
        session.gateway().get(f"{API}/generate/batch", headers=session.bearer(),
                              params={"limit": 500}), 200, "GET /generate/batch")
    return jobs


def records(session: Session, job_id: str) -> tuple[list[dict[str, Any]], str]:
    """The result file's records, and how they were fetched."""
    response = session.gateway().get(f"{API}/generate/status/{job_id}/results",
                                     headers=session.bearer())
    how = "the API's results route"
    if response.status_code in (302, 303, 307):
        location = response.headers["location"]
        with httpx.Client(timeout=60) as plain:
            response = plain.get(location)
        how = f"a presigned URL ({httpx.URL(location).host}:{httpx.URL(location).port})"
    if response.status_code != 200:
        raise StepFailed(f"the results of {job_id}: HTTP {response.status_code} "
                         f"{response.text[:200]}")
    return [json.loads(line) for line in response.text.splitlines() if line.strip()], how


def bucket(session: Session) -> str:
    """The data bucket: the deployed bucket whose name the API container is given."""
    service = session.rehearsed.services.behind_load_balancer[0]
    values = set(service.spec.environment.values())
    for deployed in session.rehearsed.deployment.deployed("AWS::S3::Bucket"):
        if deployed.physical.ref in values:
            return str(deployed.physical.ref)
    raise StepFailed("no deployed bucket is named in the API's environment")


def s3(session: Session) -> Any:
    region = session.rehearsed.services.behind_load_balancer[0].spec.region
    return session.rehearsed.aws.client("s3", region)


def keys_under(session: Session, prefix: str) -> list[str]:
    answer = s3(session).list_objects_v2(Bucket=bucket(session), Prefix=prefix)
    return [str(item["Key"]) for item in answer.get("Contents", [])]


def wait_for_key(session: Session, key: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if key in keys_under(session, key):
            return True
        time.sleep(0.5)
    return False


def queues_of(session: Session, environment: dict[str, str]) -> list[tuple[str, str]]:
    """(name, url) of the deployed queues an environment names (by URL or by name),
    dead-letter queues aside."""
    deployed = session.rehearsed.deployment.deployed("AWS::SQS::Queue")
    dead_letters = {str(q.properties.get("RedrivePolicy", {}).get("deadLetterTargetArn"))
                    for q in deployed}
    values = set(environment.values())
    return [(str(q.physical.attributes["QueueName"]), str(q.physical.ref)) for q in deployed
            if {q.physical.ref, q.physical.attributes["QueueName"]} & values
            and q.physical.attributes["Arn"] not in dead_letters]


def wait_until_idle(session: Session, environment: dict[str, str], timeout_s: float) -> str:
    """Wait until no message is waiting or in flight on those queues; what was busy if not."""
    sqs = session.rehearsed.aws.client(
        "sqs", session.rehearsed.services.behind_load_balancer[0].spec.region)
    deadline = time.monotonic() + timeout_s
    busy: list[str] = []
    while time.monotonic() < deadline:
        busy = []
        for name, url in queues_of(session, environment):
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            ])["Attributes"]
            total = sum(int(v) for v in counts.values())
            if total:
                busy.append(f"{name}: {total}")
        if not busy:
            return ""
        time.sleep(1)
    return ", ".join(busy)
