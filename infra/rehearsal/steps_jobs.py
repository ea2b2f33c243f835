"""Journey steps 6, 7 and 9: a batch job end to end, an uploaded prompt file through the S3
trigger, and a generation worker killed mid-job."""

from __future__ import annotations

import datetime
import json
import signal
import time
import uuid
from typing import Any

from rehearsal import job_client as jobs
from rehearsal.journey import Session, StepFailed, expect
from rehearsal.processes import ContainerError

BATCH_COUNT = 6
#: Records of the job whose worker is killed: two checkpoints of 32 (the queue's default
#: chunk), so that the kill lands between them.
KILL_COUNT = 64
KILL_MAX_TOKENS = 8
UPLOAD_PROMPTS = ("A short review of a kettle.", "A short review of a lamp.")
# Generous: a shared 2-core machine may run the embedded model several times slower.
TASK_TIMEOUT_S = 300
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


def _prompt_file(prompts: tuple[str, ...]) -> bytes:
    return "".join(json.dumps({"prompt": p}) + "\n" for p in prompts).encode()


def upload(session: Session) -> tuple[str, str]:
    rehearsed = session.rehearsed
    trigger = ", ".join(
        str(r.physical.ref) for r in rehearsed.deployment.deployed("AWS::Events::Rule")
        if any(":lambda:" in str(t.get("Arn")) for t in r.properties.get("Targets", [])))
    components = (f"S3 -> EventBridge (rules: {trigger}) -> batch-trigger Lambda -> "
                  "ecs:RunTask (moto) -> batch-processor task")
    rehearsed.tasks.new_tasks()  # whatever ran before is not this upload's
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    key = f"prompts/user-uploads/{session.user_id}/rehearsal-{uuid.uuid4().hex[:8]}.jsonl"
    jobs.s3(session).put_object(Bucket=jobs.bucket(session), Key=key,
                                Body=_prompt_file(UPLOAD_PROMPTS))
    task = _one_task_for(session, key, components)
    try:
        rehearsed.tasks.run(task, TASK_TIMEOUT_S)
    except ContainerError as exc:
        raise StepFailed(f"the batch-processor task failed: {exc}"[:400], components=components,
                         logs=str(exc)) from None
    skipped = _app_upload_starts_nothing(session, components)
    so_far = (f"so far: one run_task for {key.rsplit('/', 1)[-1]} "
              f"({task.capacity_provider or 'no capacity provider'}), its task exited 0; "
              f"{skipped}")
    try:
        new = [job for job in jobs.list_jobs(session) if _created(job) >= since]
    except StepFailed as failure:
        raise StepFailed(f"{failure.detail} ({so_far})", components=components) from None
    if len(new) != 1:
        raise StepFailed(f"{len(new)} new jobs listed after one upload, expected exactly 1 "
                         f"({so_far})", components=components)
    view = jobs.wait(session, new[0]["id"], JOB_TIMEOUT_S)
    if view["state"] != "succeeded":
        raise StepFailed(f"the upload's job {view['state']}: {view.get('error')}",
                         components=components)
    overrides = sorted(next(iter(task.overrides.values()), {}))
    return components, (f"{key.rsplit('/', 1)[-1]}: one run_task "
                        f"({task.capacity_provider or 'no capacity provider'}, overrides "
                        f"{overrides}), exit 0, exactly one job, succeeded; {skipped}")


def _created(job: dict[str, Any]) -> datetime.datetime:
    stamp = str((job.get("timings") or {}).get("created_at", "1970-01-01T00:00:00+00:00"))
    when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _one_task_for(session: Session, key: str, components: str) -> Any:
    rehearsed = session.rehearsed
    deadline = time.monotonic() + 45
    found: list[Any] = []
    while time.monotonic() < deadline and not found:
        found = rehearsed.tasks.new_tasks()
        time.sleep(0.5)
    time.sleep(3)  # a duplicate would arrive about now
    found += rehearsed.tasks.new_tasks()
    if len(found) != 1:
        deliveries = [d for d in rehearsed.events.delivered() if key in json.dumps(d.input)]
        trigger_log = ""
        if deliveries:
            trigger_log = rehearsed.lambdas.function(deliveries[-1].target).log_tail()
        raise StepFailed(
            f"{len(found)} run_task call(s) recorded by moto for one upload; deliveries to the "
            f"trigger: {[(d.ok, d.attempts, d.error[:120]) for d in deliveries]}",
            components=components, logs=trigger_log,
        )
    task = found[0]
    values = {v for env in task.overrides.values() for v in env.values()}
    if key not in values:
        raise StepFailed(f"run_task's overrides do not name {key}: {task.overrides}",
                         components=components)
    return task


def _app_upload_starts_nothing(session: Session, components: str) -> str:
    """A file uploaded through the app's own route is the user's to submit: no task."""
    name = f"rehearsal-app-{uuid.uuid4().hex[:8]}.jsonl"
    answer = expect(session.gateway().put(
        f"{jobs.API}/generate/batch/uploads/{name}", headers={
            **session.bearer(), "Content-Type": "application/x-ndjson"},
        content=_prompt_file(UPLOAD_PROMPTS[:1])), (200, 201), "PUT /generate/batch/uploads")
    key = answer.get("key", name) if isinstance(answer, dict) else name
    deadline = time.monotonic() + 20
    delivered: list[Any] = []
    while time.monotonic() < deadline and not delivered:
        delivered = [d for d in session.rehearsed.events.delivered()
                     if key in json.dumps(d.input)]
        time.sleep(0.5)
    time.sleep(2)
    started = session.rehearsed.tasks.new_tasks()
    if started:
        raise StepFailed(f"the app-route upload {key} started {len(started)} task(s): "
                         "it would be generated twice", components=components)
    seen = "delivered to the trigger, which skipped it" if delivered else "no event delivered"
    return f"the app-route upload {name}: no task ({seen})"


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
