"""Step Functions in the rehearsal: moto runs the deployed state machines' ASL itself.

moto's server has an ASL interpreter (`stepfunctions.execute_state_machine`): JSONPath,
Parameters, intrinsic functions, Choice, Retry/Catch, and the SQS, SNS and ECS integrations
against moto's own services. So the batch-trigger Lambda's `StartExecution` runs the real
definition, whose `ecs:runTask.sync` calls moto's `RunTask` with the overrides the definition
builds from the Lambda's input; `rehearsal.ecs_tasks` runs that task's containers as
processes and stops the task with their exit codes.

Set for that (`configure`): the interpreter on, through moto's configuration API; moto's ECS
tasks, which advance one status per `DescribeTasks` by default (RUNNING to STOPPED in four
polls), kept RUNNING until stopped, as in ECS (moto's state-manager API); and `MOTO_PORT`,
since the interpreter's AWS clients call `localhost:$MOTO_PORT`.

And moto's ECS integration is completed where it falls short of Step Functions' (`EcsIntegration`,
recorded as emulated):

- parameters: the ASL's PascalCase `Parameters` are mapped onto the ECS API's own names by the
  API's model (moto leaves that mapping empty and sends `Cluster`, which botocore refuses), and
  `CapacityProviderStrategy` passes (moto's list of RunTask parameters predates it);
- results: the ECS answers are mapped back to Step Functions' PascalCase (`TaskArn`...);
- the outcome: moto returns every stopped task as a success; Step Functions fails the state with
  `States.TaskFailed` (the stopped task's description, with its `StopCode`, as the cause) when
  an essential container did not exit 0. The rule is applied to how the rehearsal's processes
  ended (`StoppedTask`).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rehearsal.ledger import Ledger


@dataclass(frozen=True)
class StoppedTask:
    """How a task the rehearsal ran ended: its containers' exit codes and ECS's stop code."""

    exit_codes: dict[str, int]
    stop_code: str = "EssentialContainerExited"


#: The stopped task of a task ARN; None while the task runs.
StoppedTasks = Callable[[str], StoppedTask | None]
#: More describe calls than a rehearsal makes: a task leaves RUNNING only when stopped.
_NEVER = 1_000_000_000
TASK_FAILED = "States.TaskFailed"


def configure(url: str, port: int) -> None:
    """moto at `url` runs state machines, keeps tasks RUNNING until stopped, and its
    interpreter's clients reach it."""
    _post(f"{url}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
    _post(f"{url}/moto-api/state-manager/set-transition", {
        "model_name": "ecs::task", "transition": {"progression": "manual", "times": _NEVER},
    })
    os.environ["MOTO_PORT"] = str(port)
    # moto logs every failure a state catches or a Fail state raises, which the journey's
    # refused upload does on purpose; the rehearsal reads executions from their history.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(
        logging.CRITICAL)


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 - moto on the loopback address
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        answer.read()


def failure_cause(task: dict[str, Any], stopped: StoppedTask) -> str | None:
    """The cause Step Functions gives a `.sync` run that did not exit 0 (the stopped task's
    description, with its `StopCode`); None when it did."""
    if all(code == 0 for code in stopped.exit_codes.values()):
        return None
    described = {
        **task,
        "StopCode": stopped.stop_code,
        "Containers": [{"Name": name, "ExitCode": code}
                       for name, code in stopped.exit_codes.items()],
    }
    return json.dumps(described, default=str, sort_keys=True)


class EcsIntegration:
    """Installs the completions above into moto's ECS integration, once per process."""

    def __init__(self, stopped_tasks: StoppedTasks, ledger: Ledger) -> None:
        self._stopped_tasks = stopped_tasks
        self._ledger = ledger

    def install(self) -> None:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_ecs as ecs_service,
        )

        service = ecs_service.StateTaskServiceEcs
        originals = getattr(service, "_rehearsal_originals", None) or {
            "parameters": service._get_supported_parameters,
            "sync": service._build_sync_resolver,
        }
        service._rehearsal_originals = originals  # type: ignore[attr-defined]
        service._get_supported_parameters = _with_capacity_providers(  # type: ignore[method-assign]
            originals["parameters"])
        service._normalise_parameters = _to_api_names  # type: ignore[method-assign]
        service._normalise_response = _to_states_names  # type: ignore[method-assign]
        service._build_sync_resolver = _failing_when_exited_non_zero(  # type: ignore[method-assign]
            originals["sync"], self._stopped_tasks)
        self._ledger.emulate(
            "Step Functions' ecs:runTask.sync on moto's ASL interpreter: Parameters mapped to "
            "the ECS API's names (CapacityProviderStrategy included), results to PascalCase, "
            "and a task whose container did not exit 0 fails the state (States.TaskFailed); "
            "moto runs the rest (JSONPath, Choice, Retry/Catch, the SQS and SNS integrations)")


def _with_capacity_providers(original: Callable[..., Any]) -> Callable[..., Any]:
    def supported(self: Any) -> set[str] | None:
        names = original(self)
        return None if names is None else {*names, "CapacityProviderStrategy"}

    return supported


def _operation(self: Any, service_action_name: str | None) -> Any:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    by_python_name = {botocore.xform_name(name): name for name in model.operation_names}
    action = self._get_boto_service_action(service_action_name=service_action_name)
    return model.operation_model(by_python_name[action])


def _to_api_names(self: Any, parameters: dict[str, Any], boto_service_name: str | None = None,
                  service_action_name: str | None = None) -> None:
    shape = _operation(self, service_action_name).input_shape
    if shape is not None:
        self._to_boto_request(parameters, shape)


def _to_states_names(self: Any, response: Any, boto_service_name: str | None = None,
                     service_action_name: str | None = None) -> None:
    shape = _operation(self, service_action_name).output_shape
    if shape is not None:
        self._from_boto_response(response, shape)


def _failing_when_exited_non_zero(
    original: Callable[..., Any], stopped_tasks: StoppedTasks
) -> Callable[..., Any]:
    def build(self: Any, env: Any, *args: Any, **kwargs: Any) -> Callable[[], Any]:
        resolve = original(self, env, *args, **kwargs)

        def resolver() -> Any:
            task = resolve()
            if task is None:
                return None
            stopped = stopped_tasks(str(task.get("TaskArn"))) or StoppedTask({})
            cause = failure_cause(task, stopped)
            if cause is not None:
                raise _task_failed(self, env, cause)
            return task

        return resolver

    return build


def _task_failed(service: Any, env: Any, cause: str) -> Exception:
    """What Step Functions raises for a `.sync` task that failed: `States.TaskFailed`."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    # moto's EventDetails TypedDict is total: a plain dict with the one kind it carries.
    details: Any = {"taskFailedEventDetails": TaskFailedEventDetails(
        error=TASK_FAILED, cause=cause, resource=service._get_sfn_resource(),
        resourceType=service._get_sfn_resource_type(),
    )}
    return FailureEventException(failure_event=FailureEvent(
        env=env,
        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
        event_type=HistoryEventType.TaskFailed,
        event_details=details,
    ))
