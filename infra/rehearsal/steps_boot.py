"""Journey steps 1-2: the migration, as the deployment runs it (CloudFormation's trigger, before
the services), then the services boot and pass their checks."""

from __future__ import annotations

import time

from rehearsal import triggers
from rehearsal.journey import Session, StepFailed
from rehearsal.processes import ContainerError, ContainerProcess, ContainerSpec
from rehearsal.services import Service, app_container

#: The migration task's command ends with these words (the deployment's one-off task).
MIGRATE = ["db", "upgrade"]
REFUSAL_TIMEOUT_S = 60
MIGRATION_TIMEOUT_S = 180


def migration_specs(session: Session) -> list[ContainerSpec]:
    definitions = session.rehearsed.deployment.deployed("AWS::ECS::TaskDefinition")
    specs = []
    for definition in definitions:
        try:
            spec = app_container(definition)
        except ContainerError:
            continue
        if spec.command[-len(MIGRATE):] == MIGRATE:
            specs.append(spec)
    return specs


def migrate(session: Session) -> tuple[str, str]:
    """As CloudFormation deploys: the trigger that runs the migration task, before any
    service; its function's `ecs:RunTask` is run by the rehearsal, and it must succeed."""
    specs = migration_specs(session)
    if not specs:
        raise StepFailed("no task definition runs `... db upgrade`: the deployment has no "
                         "migration task", components="ECS task definitions")
    spec = specs[0]
    trigger = _migration_trigger(session, spec)
    function = trigger.function.physical.ref
    components = (f"{trigger.label} ({triggers.TRIGGER}) -> Lambda {function} -> ecs:RunTask "
                  f"{spec.family} (`{' '.join(spec.command)}`), Aurora")
    early = trigger.not_before("AWS::ECS::Service")
    if early:
        raise StepFailed(f"CloudFormation may create or update {', '.join(early)} before "
                         f"{trigger.label} migrates the schema: they do not depend on it, and "
                         "services refuse an unmigrated schema", components=components)
    refusal, refusal_logs, refused_well = _unmigrated_refusal(session)
    first = _run_migration(session, trigger, components, "")
    # The next deployment with a new image runs the trigger again: nothing to do, exit 0.
    _run_migration(session, trigger, components, "a second run (nothing to do): ")
    so_far = (f"{trigger.label} ran {function}: its task {first} exited 0, and a second run "
              "exited 0")
    if not refused_well:
        raise StepFailed(f"migration: {so_far}; but before it, {refusal}",
                         logs=refusal_logs, components=components, soft=True)
    return components, f"{so_far}; before it, {refusal}"


def _migration_trigger(session: Session, spec: ContainerSpec) -> triggers.Trigger:
    deployment = session.rehearsed.deployment
    arns = {str(d.physical.ref) for d in deployment.deployed("AWS::ECS::TaskDefinition")
            if d.properties.get("Family") == spec.family}
    try:
        found = [t for t in triggers.triggers(deployment)
                 if arns & set(t.environment().values())]
    except triggers.TriggerError as exc:
        raise StepFailed(str(exc), components="CloudFormation triggers") from None
    if not found:
        raise StepFailed(
            f"no CloudFormation trigger runs the migration task {spec.family}: CloudFormation "
            "would create the services, which refuse the empty schema, with no migration "
            "before them", components=f"ECS task {spec.family}, {triggers.TRIGGER}")
    return found[0]


def _run_migration(session: Session, trigger: triggers.Trigger, components: str,
                   which: str) -> str:
    rehearsed = session.rehearsed
    ran = triggers.run(trigger, rehearsed.lambdas, rehearsed.tasks, MIGRATION_TIMEOUT_S)
    function = rehearsed.lambdas.function(str(trigger.function.physical.ref))
    logs = "\n".join([*ran.task_errors, function.log_tail()])
    if not ran.invocation.ok:
        raise StepFailed(f"{which}the trigger's function failed, so would the deployment: "
                         f"{ran.invocation.error}"[:600], logs=logs, components=components)
    started = [task.task_definition_arn for task in ran.tasks]
    if len(started) != 1 or started[0] not in trigger.environment().values():
        raise StepFailed(f"{which}the trigger's function succeeded after starting {started}, "
                         "expected one task of the migration task definition",
                         logs=logs, components=components)
    if ran.task_errors:
        raise StepFailed(f"{which}the trigger's function succeeded, but its task failed: "
                         f"{ran.task_errors[0][:300]}", logs=logs, components=components)
    return ran.tasks[0].arn.rsplit("/", 1)[-1][:8]


def _unmigrated_refusal(session: Session) -> tuple[str, str, bool]:
    """The API service's task started against the empty database must refuse, in one line:
    (what it did, its log, whether that was right)."""
    services = session.rehearsed.services.behind_load_balancer
    if not services:
        return "no service to try against the empty database", "", True
    service = services[0]
    process = session.rehearsed.launcher.start(service.spec,
                                              label=f"{service.name} (before migration)")
    try:
        code = process.wait(REFUSAL_TIMEOUT_S)
    except ContainerError:
        process.kill()
        process.wait(10)
        return (f"{service.name} started against the unmigrated database and kept running "
                f"for {REFUSAL_TIMEOUT_S}s instead of refusing", process.log_tail(), False)
    time.sleep(0.2)  # the reader's last lines
    lines = [line for line in process.log if line.strip()]
    last = lines[-1] if lines else "(no output)"
    if code == 0:
        return f"{service.name} exited 0 against the unmigrated database", process.log_tail(), \
            False
    if len(lines) > 1:
        return (f"{service.name} refused the unmigrated database (exit {code}) in "
                f"{len(lines)} lines, not one (a traceback in its log)", process.log_tail(),
                False)
    return f"{service.name} refused the unmigrated database: exit {code}, {last[:120]!r}", "", \
        True


def boot(session: Session) -> tuple[str, str]:
    services = session.rehearsed.services
    if not services.all:
        raise StepFailed("the templates deploy no ECS service")
    components = ", ".join(f"{s.name} (`{s.command}`)" for s in services.all)
    started: list[tuple[Service, ContainerProcess]] = [
        (s, services.start(s)) for s in services.all]
    details = []
    for service, process in started:
        try:
            details.append(f"{service.name}: {services.become_healthy(service, process)}")
        except ContainerError as exc:
            raise StepFailed(str(exc), logs=process.log_tail(),
                             components=components) from None
    return components, "; ".join(details)
