"""Journey step 15: the jobs' retention. The daily schedule's purge task deletes a job that
ended longer ago than the retention, with its files.

Step 6's job is made old: its `finished_at` in Aurora (the PostgreSQL stand-in) is moved back
past the retention of the purge task's command (`--older-than DAYS`, read from the task
definition). Then the scheduled rule fires as EventBridge would fire it (`events.fire`: its
target's `RunTask` as the target's role), the task runs as deployed, and the job is gone: the
API answers 404 for it and the bucket holds none of its files. The purge's heartbeat reached
CloudWatch under exactly the metric of the alarm that goes off when no purge succeeds.
"""

from __future__ import annotations

import time
from typing import Any

from textnlp.observability.emf import SERVICE_DIMENSION

from rehearsal import job_client as jobs
from rehearsal.deploy import Deployed
from rehearsal.ecs_target import RunTaskRefused, task_definition
from rehearsal.journey import Session, StepFailed
from rehearsal.processes import ContainerError, ContainerProcess, ContainerSpec
from rehearsal.services import app_container
from rehearsal.steps_metrics import data_points

#: The purge task's command: `textnlp jobs purge --older-than DAYS`.
PURGE = ["jobs", "purge", "--older-than"]
TASK_TIMEOUT_S = 180
#: The variable that names a task's `ServiceName` dimension (its metrics').
SERVICE_NAME_VARIABLE = "TEXTNLP_OBSERVABILITY__SERVICE_NAME"
#: How long the purge's EMF lines may take from its output to CloudWatch.
METRICS_WAIT_S = 15
#: Step 6 leaves the id of its job here.
BATCH_JOB = "batch_job"


def purge(session: Session) -> tuple[str, str]:
    rehearsed = session.rehearsed
    rule, spec = _purge_rule(session)
    days = int(spec.command[spec.command.index("--older-than") + 1])
    components = (f"EventBridge rule {rule.physical.ref} "
                  f"({rule.properties['ScheduleExpression']}) -> ecs:RunTask as its role -> "
                  f"{spec.family} (`{' '.join(spec.command)}`), Aurora, S3")
    job_id = str(session.facts.get(BATCH_JOB, ""))
    if not job_id:
        raise StepFailed("step 6 left no job to purge", components=components)
    files = [*jobs.keys_under(session, f"generated/batch-jobs/{job_id}/"),
             *jobs.keys_under(session, f"validation/results/{job_id}.json")]
    if not files:
        raise StepFailed(f"job {job_id} has no files in the bucket before the purge",
                         components=components)
    _age(session, job_id, days + 1)
    rehearsed.tasks.new_tasks()  # earlier steps' tasks are not this run's
    try:
        started = rehearsed.events.fire(rule)
    except RunTaskRefused as exc:
        raise StepFailed(f"EventBridge could not start the purge task: {exc}",
                         components=components) from None
    ran = [task for task in rehearsed.tasks.new_tasks() if task.arn in started]
    if len(ran) != 1 or ran[0].task_definition_arn != spec.task_definition_arn:
        raise StepFailed(f"the rule started {started}, expected one {spec.family} task",
                         components=components)
    try:
        processes = rehearsed.tasks.run(ran[0], TASK_TIMEOUT_S)
    except ContainerError as exc:
        raise StepFailed(f"the purge task failed: {str(exc)[:400]}",
                         components=components) from None
    said = _said(processes)
    response = session.gateway().get(f"{jobs.API}/generate/status/{job_id}",
                                     headers=session.bearer())
    if response.status_code != 404:
        raise StepFailed(f"after the purge, GET /generate/status/{job_id} answers "
                         f"{response.status_code}, not 404 ({said})", components=components)
    left = [*jobs.keys_under(session, f"generated/batch-jobs/{job_id}/"),
            *jobs.keys_under(session, f"validation/results/{job_id}.json")]
    if left:
        raise StepFailed(f"the purge left {left} in the bucket", components=components)
    alarms = _heartbeat(session, spec, components)
    return components, (f"job {job_id[:8]} aged {days + 1} days; the task said "
                        f"{said[-1].strip() if said else '(nothing)'!r}; its status is 404 and "
                        f"its {len(files)} file(s) are gone from the bucket; alarm "
                        f"{', '.join(alarms)} has its point")


def _heartbeat(session: Session, spec: ContainerSpec, components: str) -> list[str]:
    """The alarms on the purge task's metrics, each with a data point of this run in
    CloudWatch: a purge that fails publishes none, and the alarm goes off."""
    service = spec.environment.get(SERVICE_NAME_VARIABLE, "")
    alarms = [alarm for alarm in session.rehearsed.deployment.described("AWS::CloudWatch::Alarm")
              if {"Name": SERVICE_DIMENSION, "Value": service}
              in alarm.properties.get("Dimensions", [])]
    if not service or not alarms:
        named = service or f"it sets no {SERVICE_NAME_VARIABLE}"
        raise StepFailed(f"no alarm watches a metric of the purge task ({named}): a purge that "
                         "fails goes unnoticed", components=components)
    names = []
    for alarm in alarms:
        props = alarm.properties
        dimensions = tuple((str(d["Name"]), str(d["Value"])) for d in props["Dimensions"])
        cloudwatch = session.rehearsed.aws.client("cloudwatch", alarm.stack.region)
        deadline = time.monotonic() + METRICS_WAIT_S
        while not data_points(cloudwatch, props["Namespace"], props["MetricName"], dimensions):
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"alarm {props['AlarmName']} watches {props['Namespace']}/"
                    f"{props['MetricName']} {dict(dimensions)}, which the purge did not publish",
                    components=components)
            time.sleep(0.5)
        names.append(str(props["AlarmName"]))
    return names


def _said(processes: list[ContainerProcess]) -> list[str]:
    """The task's `purged N jobs ...` line (its log reader may still be at the last lines)."""
    deadline = time.monotonic() + 5
    while True:
        said = [line for process in processes for line in list(process.log) if "purged" in line]
        if said or time.monotonic() > deadline:
            return said
        time.sleep(0.1)


def _purge_rule(session: Session) -> tuple[Deployed, ContainerSpec]:
    """The scheduled rule whose ECS target's task runs `textnlp jobs purge`, and that task."""
    deployment = session.rehearsed.deployment
    for rule in session.rehearsed.events.scheduled_rules():
        for target in rule.properties.get("Targets", []):
            arn = str(target.get("EcsParameters", {}).get("TaskDefinitionArn", ""))
            definition = task_definition(deployment, arn)
            if definition is None:
                continue
            try:
                spec = app_container(definition)
            except ContainerError:
                continue
            if _runs_purge(spec.command):
                return rule, spec
    raise StepFailed("no scheduled EventBridge rule runs a task of `textnlp jobs purge`: the "
                     "deployment never deletes old jobs", components="EventBridge rules")


def _runs_purge(command: list[str]) -> bool:
    return any(command[i:i + len(PURGE)] == PURGE for i in range(len(command)))


def _age(session: Session, job_id: str, days: int) -> None:
    """Move the job's end `days` days back, in the deployment's database."""
    import psycopg

    clusters = [c for c in session.rehearsed.deployment.deployed("AWS::RDS::DBCluster")
                if "Endpoint.Address" in c.physical.attributes]
    if len(clusters) != 1:
        raise StepFailed(f"{len(clusters)} Aurora clusters run, expected the one the jobs are in")
    cluster = clusters[0]
    props: dict[str, Any] = cluster.properties
    with psycopg.connect(
        host=cluster.physical.attributes["Endpoint.Address"],
        port=int(cluster.physical.attributes["Endpoint.Port"]),
        user=str(props["MasterUsername"]), password=str(props["MasterUserPassword"]),
        dbname=str(props.get("DatabaseName") or "postgres"), sslmode="require",
    ) as conn:
        aged = conn.execute(
            "UPDATE jobs SET finished_at = finished_at - make_interval(days => %s) "
            "WHERE id = %s AND finished_at IS NOT NULL", (days, job_id)).rowcount
    if aged != 1:
        raise StepFailed(f"job {job_id} has no end time in the database to move back")
