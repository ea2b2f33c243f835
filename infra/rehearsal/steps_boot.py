"""Journey steps 1-2: the one-off migration task, then the services boot and pass their checks."""

from __future__ import annotations

import time

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
    specs = migration_specs(session)
    if not specs:
        raise StepFailed("no task definition runs `... db upgrade`: the deployment has no "
                         "migration task", components="ECS task definitions")
    spec = specs[0]
    components = f"ECS task {spec.family} (`{' '.join(spec.command)}`), Aurora"
    refusal, refusal_logs, refused_well = _unmigrated_refusal(session)
    launcher = session.rehearsed.launcher
    process = launcher.start(spec, label=f"{spec.family} (migration)")
    try:
        code = process.wait(MIGRATION_TIMEOUT_S)
    except ContainerError as exc:
        process.kill()
        raise StepFailed(str(exc), logs=process.log_tail(), components=components) from None
    if code != 0:
        raise StepFailed(f"migration exited with {code}", logs=process.log_tail(),
                         components=components)
    again = launcher.start(spec, label=f"{spec.family} (migration, again)")
    second = again.wait(MIGRATION_TIMEOUT_S)
    if second != 0:
        raise StepFailed(f"a second migration run (nothing to do) exited with {second}",
                         logs=again.log_tail(), components=components)
    if not refused_well:
        raise StepFailed(f"migration: exit 0, and 0 again when re-run; but before it, {refusal}",
                         logs=refusal_logs, components=components, soft=True)
    return components, f"exit 0, and 0 again when re-run; before it, {refusal}"


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
