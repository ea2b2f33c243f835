"""The deployment's migration step: run the ``migrate`` task (``textnlp db upgrade``), wait for it.

CloudFormation invokes this function (a CDK trigger, ``infra/textnlp_infra/constructs/
migration_trigger.py``) after the migration task definition and the cluster exist and before it
creates or updates the ECS services, which refuse to start on an older schema
(``textnlp.adapters.db.schema.check_schema``). It runs again whenever the task definition gets
a new revision (a new image), so every release migrates before its services roll.

It starts one Fargate task (``ecs:RunTask``) in the configured subnets and security group,
polls ``ecs:DescribeTasks`` until the task stops, and returns when the migration container
exited 0. Anything else raises ``MigrationFailed`` with the task's stopped reason and the
container's exit code, which fails the deployment (the trigger reports the error message to
CloudFormation, which rolls the stack back before any service changes). When the function's
time runs out first, it raises too and leaves the task running: stopping a migration half way is
worse than letting it finish; the next deployment runs it again (``db upgrade`` is idempotent).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

#: The function's configuration, one variable each; the infra builds the environment from this.
CONFIG_VARIABLES: dict[str, str] = {
    "CLUSTER": "the ECS cluster to run the migration task in",
    "TASK_DEFINITION_ARN": "the migration task definition (its current revision)",
    "CONTAINER_NAME": "the task's container that runs `textnlp db upgrade`",
    "SUBNETS": "comma-separated subnet ids for the task (the private subnets)",
    "SECURITY_GROUPS": "comma-separated security group ids for the task",
}
#: Who started the task, as ECS lists it (`startedBy`, at most 128 characters).
STARTED_BY = "textnlp-migration-trigger"
#: Seconds between DescribeTasks calls: Fargate takes about a minute to start a task.
POLL_S = 5.0
#: Time kept back from the function's timeout to answer with an error rather than be killed.
MARGIN_S = 20.0
#: The time budget when no Lambda context says how much is left (a direct call).
DEFAULT_BUDGET_S = 600.0
_clients: dict[str, Any] = {}


class MigrationFailed(RuntimeError):
    """The migration did not finish with exit code 0; the message says why."""


@dataclass(frozen=True)
class MigrationConfig:
    cluster: str
    task_definition_arn: str
    container_name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> MigrationConfig:
        missing = [name for name in CONFIG_VARIABLES if not environ.get(name, "").strip()]
        if missing:
            raise RuntimeError(f"migration trigger environment lacks {', '.join(missing)}")
        return cls(
            cluster=environ["CLUSTER"].strip(),
            task_definition_arn=environ["TASK_DEFINITION_ARN"].strip(),
            container_name=environ["CONTAINER_NAME"].strip(),
            subnets=_ids(environ["SUBNETS"]),
            security_groups=_ids(environ["SECURITY_GROUPS"]),
        )


def _ids(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _client(service: str) -> Any:
    """One boto3 client per service and container."""
    if service not in _clients:
        import boto3

        _clients[service] = boto3.client(service)
    return _clients[service]


def run_task_arguments(config: MigrationConfig) -> dict[str, Any]:
    return {
        "cluster": config.cluster,
        "taskDefinition": config.task_definition_arn,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": STARTED_BY,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(config.subnets),
                "securityGroups": list(config.security_groups),
                "assignPublicIp": "DISABLED",
            }
        },
    }


def run_migration(
    ecs: Any,
    config: MigrationConfig,
    *,
    time_left: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Run the task and wait for it: ``{"taskArn", "exitCode": 0}``, or MigrationFailed."""
    answer = ecs.run_task(**run_task_arguments(config))
    tasks = answer.get("tasks") or []
    if answer.get("failures") or not tasks:
        raise MigrationFailed(
            f"ECS started no migration task from {config.task_definition_arn}: "
            f"{answer.get('failures') or 'no task and no failure returned'}"
        )
    task_arn = str(tasks[0]["taskArn"])
    log.info("migration task %s started in %s", task_arn, config.cluster)
    while True:
        task = _describe(ecs, config.cluster, task_arn)
        status = str(task.get("lastStatus", ""))
        if status == "STOPPED":
            return _outcome(config, task)
        if time_left() < POLL_S + MARGIN_S:
            raise MigrationFailed(
                f"migration task {task_arn} is still {status or 'starting'} and this function "
                "is out of time; the task was left to finish, and the next deployment runs "
                "the migration again"
            )
        sleep(POLL_S)


def _describe(ecs: Any, cluster: str, task_arn: str) -> dict[str, Any]:
    answer = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
    for task in answer.get("tasks") or []:
        return dict(task)
    raise MigrationFailed(
        f"ECS no longer knows the migration task {task_arn}: {answer.get('failures')}"
    )


def _outcome(config: MigrationConfig, task: Mapping[str, Any]) -> dict[str, Any]:
    task_arn = str(task["taskArn"])
    container: Mapping[str, Any] = next(
        (c for c in task.get("containers") or [] if c.get("name") == config.container_name),
        {},
    )
    code = container.get("exitCode")
    if code == 0:
        log.info("migration task %s: %s exited 0", task_arn, config.container_name)
        return {"taskArn": task_arn, "exitCode": 0}
    # No exit code: the container never ran (an image pull or a secret failed); the stopped
    # reason says which.
    detail = f"exit code {code}" if code is not None else "no exit code"
    if container.get("reason"):
        detail += f", {container['reason']}"
    raise MigrationFailed(
        f"migration task {task_arn} stopped: {task.get('stoppedReason') or 'no reason given'} "
        f"({config.container_name}: {detail}); its log is in the task's log group"
    )


def _time_left(context: Any) -> Callable[[], float]:
    """Seconds this invocation has left: the Lambda context's, or DEFAULT_BUDGET_S from now."""
    if context is not None:
        return lambda: float(context.get_remaining_time_in_millis()) / 1000
    deadline = time.monotonic() + DEFAULT_BUDGET_S
    return lambda: deadline - time.monotonic()


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    config = MigrationConfig.from_environ(os.environ)
    return run_migration(_client("ecs"), config, time_left=_time_left(context), sleep=time.sleep)
