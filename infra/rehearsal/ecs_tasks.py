"""`ecs:RunTask` as it happens in AWS: moto records the call, the rehearsal runs the task.

The batch state machine's `ecs:runTask.sync` (moto's interpreter, `rehearsal.state_machines`)
calls `run_task` against moto. The rehearsal finds the new task there
(`list_tasks`/`describe_tasks`: its task definition and `overrides.containerOverrides`), starts
that task definition's containers as processes with their environment plus the recorded
overrides, waits for them to exit, keeps their exit codes (the `.sync` outcome reads them) and
stops the task in moto, whose `DescribeTasks` then reports those exit codes (moto's own are
always 0): a caller polling the task, like the deployment's migration trigger, reads how it
really ended. A task that runs past its time is killed and stopped with exit code 137.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.ecs.models import ecs_backends

from rehearsal.aws import MotoAws
from rehearsal.deploy import Deployment
from rehearsal.processes import ContainerError, ContainerLauncher, ContainerProcess, container_specs
from rehearsal.state_machines import StoppedTask


@dataclass(frozen=True)
class RecordedTask:
    arn: str
    cluster: str
    task_definition_arn: str
    started_by: str
    group: str
    #: container name -> the environment overrides run_task was given
    overrides: dict[str, dict[str, str]]
    capacity_provider: str


#: The exit code of a container killed for running past its time (SIGKILL).
KILLED = 137


class RunTaskObserver:
    def __init__(self, deployment: Deployment, aws: MotoAws, launcher: ContainerLauncher) -> None:
        self._deployment = deployment
        self._aws = aws
        self._launcher = launcher
        self._seen: set[str] = set()
        self._stopped: dict[str, StoppedTask] = {}
        deployment.ledger.emulate("ECS DescribeTasks of a stopped task: its containers' exit "
                                  "codes are the rehearsal's processes' (moto reports 0)")

    def stopped(self, task_arn: str) -> StoppedTask | None:
        """How a task the rehearsal ran ended; None until it stopped."""
        return self._stopped.get(task_arn)

    def new_tasks(self) -> list[RecordedTask]:
        """Tasks moto holds that the rehearsal has not run yet (services' tasks aside)."""
        found = []
        for cluster in self._deployment.deployed("AWS::ECS::Cluster"):
            ecs = self._aws.client("ecs", cluster.stack.region)
            arn = str(cluster.physical.attributes["Arn"])
            task_arns = ecs.list_tasks(cluster=arn).get("taskArns", [])
            fresh = [t for t in task_arns if t not in self._seen]
            if not fresh:
                continue
            for task in ecs.describe_tasks(cluster=arn, tasks=fresh).get("tasks", []):
                if str(task.get("group", "")).startswith("service:"):
                    continue
                self._seen.add(task["taskArn"])
                found.append(_recorded(task, arn))
        return found

    def run(self, task: RecordedTask, timeout_s: float) -> list[ContainerProcess]:
        """Run the task's containers to completion; ContainerError unless each exits 0."""
        definition = next(
            (d for d in self._deployment.deployed("AWS::ECS::TaskDefinition")
             if d.physical.ref == task.task_definition_arn), None,
        )
        if definition is None:
            raise ContainerError(f"run_task named {task.task_definition_arn}, "
                                 "which no template registers")
        processes: list[tuple[str, ContainerProcess]] = []
        for spec in container_specs(definition):
            if not spec.command:
                continue
            process = self._launcher.start(
                spec, label=f"{spec.label} (run_task {task.arn.rsplit('/', 1)[-1][:8]})",
                overrides=task.overrides.get(spec.name, {}),
            )
            processes.append((spec.name, process))
        codes: dict[str, int] = {}
        overran: ContainerError | None = None
        for name, process in processes:
            if overran is not None:
                process.kill()
                codes[name] = KILLED
                continue
            try:
                codes[name] = process.wait(timeout_s)
            except ContainerError as exc:
                process.kill()
                codes[name], overran = KILLED, exc
        self._stop(task, definition.stack.region, codes)
        if overran is not None:
            raise overran
        failed = [process for name, process in processes if codes[name] != 0]
        if failed:
            raise ContainerError(
                f"{failed[0].label} exited with {failed[0].popen.returncode}:\n"
                f"{failed[0].log_tail()}"
            )
        return [process for _, process in processes]

    def _stop(self, task: RecordedTask, region: str, codes: dict[str, int]) -> None:
        """Stop the task in moto as ECS would, with its containers' exit codes."""
        self._stopped[task.arn] = StoppedTask(codes)  # before the stop: .sync reads it
        backend = ecs_backends[self._aws.account][region]
        recorded = backend.tasks.get(task.cluster.rsplit("/", 1)[-1], {}).get(task.arn)
        for container in getattr(recorded, "containers", []):
            if container.name in codes:
                container.exitCode = codes[container.name]
        reason = f"Essential container exited with {max(codes.values(), default=0)}"
        self._aws.client("ecs", region).stop_task(cluster=task.cluster, task=task.arn,
                                                  reason=reason)


def _recorded(task: dict[str, Any], cluster: str) -> RecordedTask:
    overrides: dict[str, dict[str, str]] = {}
    for override in (task.get("overrides") or {}).get("containerOverrides", []):
        overrides[override["name"]] = {
            e["name"]: e["value"] for e in override.get("environment", [])
        }
    return RecordedTask(
        arn=str(task["taskArn"]), cluster=cluster,
        task_definition_arn=str(task["taskDefinitionArn"]),
        started_by=str(task.get("startedBy", "")), group=str(task.get("group", "")),
        overrides=overrides, capacity_provider=str(task.get("capacityProviderName", "")),
    )
