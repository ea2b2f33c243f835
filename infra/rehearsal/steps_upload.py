"""Journey step 7: prompt files put into the bucket, through the S3 trigger and the batch state
machine.

- A user's file: S3 -> EventBridge -> the batch-trigger Lambda -> `StartExecution` -> moto runs
  the machine's ASL -> `ecs:runTask.sync` -> the batch processor's command with the overrides the
  ASL built from the Lambda's input -> exactly one job, succeeded; the execution succeeds and
  the job topic hears `succeeded`.
- A file the batch processor refuses (no `<user>/` in its key): the real CLI exits non-zero, the
  execution takes its Catch: the upload lands in the batch dead-letter queue, the topic hears
  `failed`, and the execution fails.
- A file uploaded through the app's own route starts nothing.
"""

from __future__ import annotations

import datetime
import json
import re
import time
import uuid
from typing import Any

from rehearsal import job_client as jobs
from rehearsal.batch_machine import BatchMachine, TopicTap, dead_lettered
from rehearsal.ecs_tasks import RecordedTask
from rehearsal.journey import Session, StepFailed, expect
from rehearsal.processes import ContainerError

UPLOAD_PROMPTS = ("A short review of a kettle.", "A short review of a lamp.")
# Generous: a shared 2-core machine may run the embedded model several times slower.
TASK_TIMEOUT_S = 300
JOB_TIMEOUT_S = 360
EXECUTION_TIMEOUT_S = 60


def _prompt_file(prompts: tuple[str, ...]) -> bytes:
    return "".join(json.dumps({"prompt": p}) + "\n" for p in prompts).encode()


def upload(session: Session) -> tuple[str, str]:
    rehearsed = session.rehearsed
    machine = BatchMachine.of(session)
    trigger = ", ".join(
        str(r.physical.ref) for r in rehearsed.deployment.deployed("AWS::Events::Rule")
        if any(":lambda:" in str(t.get("Arn")) for t in r.properties.get("Targets", [])))
    components = (f"S3 -> EventBridge (rules: {trigger}) -> batch-trigger Lambda -> "
                  f"states:StartExecution -> {machine.name} (its ASL, run by moto) -> "
                  "ecs:runTask.sync -> batch-processor task -> SNS / batch DLQ")
    tap = TopicTap(session, machine.topic_arn, machine.deployed.stack.region)
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
    _expect_execution(machine, key, "SUCCEEDED", components)
    tap.wait_for("succeeded", key, EXECUTION_TIMEOUT_S)
    skipped = _app_upload_starts_nothing(session, components)
    so_far = (f"so far: one execution for {key.rsplit('/', 1)[-1]}, its task "
              f"({task.capacity_provider or 'no capacity provider'}) exited 0; {skipped}")
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
    refused = _refused_upload(session, machine, tap, components)
    overrides = sorted(next(iter(task.overrides.values()), {}))
    return components, (f"{key.rsplit('/', 1)[-1]}: one execution, its task "
                        f"({task.capacity_provider or 'no capacity provider'}, overrides "
                        f"{overrides}) exited 0, exactly one job, succeeded, execution "
                        f"SUCCEEDED, topic told; {refused}; {skipped}")


def _expect_execution(machine: BatchMachine, key: str, status: str, components: str) -> None:
    execution = machine.finished_execution(key, EXECUTION_TIMEOUT_S)
    if execution["status"] != status:
        raise StepFailed(
            f"the execution for {key} is {execution['status']}, expected {status}: "
            f"{execution.get('error')} {str(execution.get('cause'))[:200]}",
            components=components, logs="\n".join(machine.failed_states(
                execution["executionArn"])))


def _refused_upload(
    session: Session, machine: BatchMachine, tap: TopicTap, components: str
) -> str:
    """A key without `<user>/`: the CLI refuses it, and the machine's Catch takes over."""
    rehearsed = session.rehearsed
    key = f"prompts/user-uploads/rehearsal-no-owner-{uuid.uuid4().hex[:8]}.jsonl"
    jobs.s3(session).put_object(Bucket=jobs.bucket(session), Key=key,
                                Body=_prompt_file(UPLOAD_PROMPTS[:1]))
    task = _one_task_for(session, key, components)
    try:
        rehearsed.tasks.run(task, TASK_TIMEOUT_S)
    except ContainerError as exc:
        exited = re.search(r"exited with (-?\d+)", str(exc))
        refusal = f"the CLI exited {exited.group(1) if exited else '?'}"
    else:
        raise StepFailed(f"the batch processor accepted {key}, which names no user",
                         components=components)
    _expect_execution(machine, key, "FAILED", components)
    region = machine.deployed.stack.region
    message = dead_lettered(session, machine.dead_letter_queue_url, key, region)
    if message.get("error") != "States.TaskFailed":
        raise StepFailed(f"the dead-letter message for {key} says {message.get('error')!r}, "
                         "expected States.TaskFailed", components=components)
    tap.wait_for("failed", key, EXECUTION_TIMEOUT_S)
    return (f"a file without a user ({refusal}): execution FAILED, its upload in the batch "
            "DLQ (States.TaskFailed), topic told")


def _created(job: dict[str, Any]) -> datetime.datetime:
    stamp = str((job.get("timings") or {}).get("created_at", "1970-01-01T00:00:00+00:00"))
    when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _one_task_for(session: Session, key: str, components: str) -> RecordedTask:
    rehearsed = session.rehearsed
    deadline = time.monotonic() + 45
    found: list[RecordedTask] = []
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
