"""CloudFormation's triggers (CDK's `Custom::Trigger`): found in the templates, run as the
deployment runs them.

A trigger invokes its function synchronously while its stack deploys, after the resources it
depends on and before those that depend on it; an error fails the deployment. The rehearsal
runs the deployed function from its asset (`rehearsal.lambdas`) with the empty event the
trigger's provider sends. What the function starts with `ecs:RunTask` in moto is run meanwhile
by the rehearsal's task runner (`rehearsal.ecs_tasks`), which stops the task in moto with its
containers' exit codes, so a function that polls the task sees how it ended.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from rehearsal.assembly import Stack
from rehearsal.deploy import Deployed, Deployment
from rehearsal.ecs_tasks import RecordedTask, RunTaskObserver
from rehearsal.lambdas import Invocation, LambdaService
from rehearsal.processes import ContainerError

TRIGGER = "Custom::Trigger"
#: What the trigger's provider sends: it invokes the function without a payload.
EVENT: dict[str, Any] = {}


class TriggerError(RuntimeError):
    """The templates' trigger cannot be found or read as CloudFormation would."""


@dataclass(frozen=True)
class Trigger:
    stack: Stack
    logical_id: str
    function: Deployed

    @property
    def label(self) -> str:
        return f"{self.stack.name}/{self.logical_id}"

    def environment(self) -> dict[str, str]:
        variables = self.function.properties.get("Environment", {}).get("Variables", {})
        return {str(k): str(v) for k, v in variables.items()}

    def not_before(self, type_: str) -> list[str]:
        """The resources of `type_` in the trigger's stack that CloudFormation may create or
        update before the trigger ran: those that do not depend on it (`DependsOn`, at any
        depth)."""
        resources = self.stack.resources
        after: dict[str, bool] = {}

        def waits(logical_id: str, seen: frozenset[str]) -> bool:
            if logical_id not in after:
                depends = resources.get(logical_id, {}).get("DependsOn", [])
                names = [depends] if isinstance(depends, str) else list(depends)
                after[logical_id] = self.logical_id in names or any(
                    waits(n, seen | {logical_id}) for n in names if n not in seen)
            return after[logical_id]

        return [name for name, resource in resources.items()
                if resource.get("Type") == type_ and not waits(name, frozenset())]


@dataclass(frozen=True)
class TriggerRun:
    invocation: Invocation
    tasks: list[RecordedTask]
    #: Why a task's containers did not exit 0, as the rehearsal saw it.
    task_errors: list[str]


def triggers(deployment: Deployment) -> list[Trigger]:
    found = []
    for stack, logical_id, resource in deployment.assembly.resources_of_type(TRIGGER):
        found.append(Trigger(stack, logical_id, _handler(deployment, stack, resource)))
    return found


def _handler(deployment: Deployment, stack: Stack, resource: dict[str, Any]) -> Deployed:
    """The function behind `HandlerArn`: a `Ref` to a version of a function of the stack."""
    arn = resource.get("Properties", {}).get("HandlerArn")
    version_id = arn.get("Ref") if isinstance(arn, dict) else None
    version = stack.resources.get(str(version_id), {})
    name = version.get("Properties", {}).get("FunctionName")
    function_id = name.get("Ref") if isinstance(name, dict) else None
    for deployed in deployment.deployed("AWS::Lambda::Function"):
        if deployed.stack.name == stack.name and deployed.logical_id == function_id:
            return deployed
    raise TriggerError(f"{stack.name}: a {TRIGGER}'s HandlerArn {arn} names no version of a "
                       "function in its stack")


def run(trigger: Trigger, lambdas: LambdaService, tasks: RunTaskObserver,
        task_timeout_s: float) -> TriggerRun:
    """Invoke the trigger's function; run every task it starts until the invocation ends."""
    tasks.new_tasks()  # whatever ran before is not this invocation's
    ran: list[RecordedTask] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(lambdas.invoke, str(trigger.function.physical.ref), EVENT)
        while not answer.done():
            for task in tasks.new_tasks():
                ran.append(task)
                try:
                    tasks.run(task, task_timeout_s)
                except ContainerError as exc:
                    errors.append(str(exc))
            time.sleep(0.2)
        invocation = answer.result()
    return TriggerRun(invocation, ran, errors)
