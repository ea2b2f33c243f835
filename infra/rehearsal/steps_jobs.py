"""Journey steps 6 and 9: a batch job end to end, and a generation worker killed mid-job
(step 7, an uploaded prompt file, is `steps_upload`)."""

from __future__ import annotations

import signal
from typing import Any

from rehearsal import job_client as jobs
from rehearsal.journey import Session, StepFailed
from rehearsal.processes import ContainerError
from rehearsal.steps_retention import BATCH_JOB

BATCH_COUNT = 6
#: Records of the job whose worker is killed: two checkpoints of 32 (the queue's default
#: chunk), so that the kill lands between them.
KILL_COUNT = 64
KILL_MAX_TOKENS = 8
# Generous: a shared 2-core machine may run the embedded model several times slower.
IDLE_TIMEOUT_S = 240
PROGRESS_TIMEOUT_S = 300
JOB_TIMEOUT_S = 360


def _worker_logs(session: Session) -> str:
    return "\n".join(f"--- {s.name}\n{s.task.log_tail(12)}" for s in
                     session.rehearsed.services.workers if s.task is not None)


def batch_job(session: Session) -> tuple[str, str]:
    generation = session.rehearsed.services.worker_consuming("generation")
    validation = session.rehearsed.services.worker_consuming("validation")
    components = (f"REST API -> API task -> SQS -> {generation.name} -> S3; "
                  f"{validation.name} -> S3 validation/results/")
    view = jobs.submit(session, {"template": "product-review", "count": BATCH_COUNT,
                                 "params": {"max_tokens": 8}, "validation": jobs.lenient_gate()})
    job_id = view["id"]
    session.facts[BATCH_JOB] = job_id  # step 15 purges it
    try:
        view = jobs.wait(session, job_id, JOB_TIMEOUT_S)
    except StepFailed as failure:
        raise StepFailed(failure.detail, logs=_worker_logs(session),
                         components=components) from None
    if view["state"] != "succeeded":
        raise StepFailed(f"job {job_id} {view['state']}: {view.get('error')}",
                         logs=_worker_logs(session), components=components)
    stored = jobs.keys_under(session, f"generated/batch-jobs/{job_id}/")
    if not stored:
        raise StepFailed(f"nothing under generated/batch-jobs/{job_id}/ in the bucket",
                         components=components)
    records, how = jobs.records(session, job_id)
    if len(records) != BATCH_COUNT:
        raise StepFailed(f"{len(records)} records downloaded, {BATCH_COUNT} expected",
                         components=components)
    report = f"validation/results/{job_id}.json"
    if not jobs.wait_for_key(session, report, 90):
        raise StepFailed(f"{report} never appeared in the bucket", components=components,
                         logs=_worker_logs(session))
    return components, (f"job {job_id[:8]} succeeded; {len(stored)} object(s) under "
                        f"generated/batch-jobs/{job_id[:8]}.../; {len(records)} records via "
                        f"{how}; {report} written")


def kill_worker(session: Session) -> tuple[str, str]:
    services = session.rehearsed.services
    worker = services.worker_consuming("generation")
    components = f"{worker.name} task SIGKILLed mid-job, a replacement task, SQS redelivery"
    # Earlier steps' jobs (an upload's) must not share the worker with this one.
    busy = jobs.wait_until_idle(session, worker.spec.environment, IDLE_TIMEOUT_S)
    if busy:
        raise StepFailed(f"{worker.name} still has earlier work after {IDLE_TIMEOUT_S}s "
                         f"({busy}): cannot kill it mid-job", components=components)
    view = jobs.submit(session, {"template": "product-review", "count": KILL_COUNT,
                                 "params": {"max_tokens": KILL_MAX_TOKENS}, "seed": 7})
    job_id = view["id"]
    victim = worker.task
    if victim is None:
        raise StepFailed(f"{worker.name} has no running task", components=components)

    def some_stored(seen: dict[str, Any]) -> bool:
        return int((seen.get("progress") or {}).get("done", 0)) > 0

    try:
        view = jobs.wait(session, job_id, PROGRESS_TIMEOUT_S, until=some_stored, poll_s=0.2)
    except StepFailed as failure:
        raise StepFailed(failure.detail, logs=victim.log_tail(), components=components) from None
    done_at_kill = view["progress"]["done"]
    if view["state"] == "succeeded":
        raise StepFailed(f"the job finished ({done_at_kill} records) before the worker could be "
                         "killed mid-job", components=components)
    victim.kill(signal.SIGKILL)
    victim.popen.wait(timeout=10)
    replacement = services.start(worker)
    try:
        services.become_healthy(worker, replacement)
        view = jobs.wait(session, job_id, JOB_TIMEOUT_S)
    except (StepFailed, ContainerError) as failure:
        raise StepFailed(str(failure), logs=replacement.log_tail(),
                         components=components) from None
    if view["state"] != "succeeded":
        raise StepFailed(f"job {view['state']} after the kill: {view.get('error')}",
                         logs=replacement.log_tail(), components=components)
    records, _ = jobs.records(session, job_id)
    indices = sorted(int(r["index"]) for r in records)
    if indices != list(range(KILL_COUNT)):
        duplicates = len(indices) - len(set(indices))
        missing = sorted(set(range(KILL_COUNT)) - set(indices))
        raise StepFailed(f"{len(indices)} records: {duplicates} duplicated, missing {missing}",
                         components=components)
    return components, (f"killed at {done_at_kill}/{KILL_COUNT} stored; the replacement "
                        f"finished the job: every index 0..{KILL_COUNT - 1} exactly once "
                        f"(attempts {view.get('attempts')})")
