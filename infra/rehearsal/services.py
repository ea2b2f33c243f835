"""ECS services: one task of each, started from the service's task definition, and the API's
task registered in its load balancer's target group once its health check passes.

The templates' desired counts (2 per service in production) are not reproduced: one task per
service fits a CI machine, and the worker-kill step starts the replacement ECS would start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rehearsal.alb import TargetGroups
from rehearsal.deploy import Deployed, Deployment
from rehearsal.ledger import Ledger
from rehearsal.processes import (
    ContainerError,
    ContainerLauncher,
    ContainerProcess,
    ContainerSpec,
    container_specs,
)

#: A worker without a health check counts as up when it is still running after this long.
WORKER_SETTLE_S = 5.0


@dataclass
class Service:
    deployed: Deployed
    definition: Deployed
    spec: ContainerSpec
    tasks: list[ContainerProcess] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.deployed.physical.attributes.get("Name", self.deployed.logical_id))

    @property
    def load_balancers(self) -> list[dict[str, Any]]:
        return list(self.deployed.properties.get("LoadBalancers", []))

    @property
    def command(self) -> str:
        return " ".join(self.spec.command)

    @property
    def task(self) -> ContainerProcess | None:
        running = [t for t in self.tasks if t.alive()]
        return running[-1] if running else None


def task_definition_of(deployment: Deployment, reference: str) -> Deployed | None:
    """By ARN, or by family (its latest revision), as ECS accepts both."""
    definitions = deployment.deployed("AWS::ECS::TaskDefinition")
    for definition in definitions:
        if definition.physical.ref == reference:
            return definition
    family = [d for d in definitions if d.physical.attributes.get("Family") == reference]
    return family[-1] if family else None


def app_container(definition: Deployed) -> ContainerSpec:
    """The essential container that runs the app (the one with a command)."""
    specs = [s for s in container_specs(definition) if s.command]
    essential = [s for s in specs if s.definition.get("Essential", True)]
    if not essential:
        raise ContainerError(f"{definition.label}: no container with a command")
    return essential[0]


class Services:
    def __init__(self, deployment: Deployment, launcher: ContainerLauncher,
                 targets: TargetGroups, ledger: Ledger) -> None:
        self._launcher = launcher
        self._targets = targets
        self.all: list[Service] = []
        for deployed in deployment.deployed("AWS::ECS::Service"):
            definition = task_definition_of(deployment, str(deployed.properties["TaskDefinition"]))
            if definition is None:
                raise ContainerError(f"service {deployed.label}: no task definition "
                                     f"{deployed.properties['TaskDefinition']}")
            self.all.append(Service(deployed, definition, app_container(definition)))
        counts = ", ".join(f"{s.name} {s.deployed.properties.get('DesiredCount', 1)}"
                           for s in self.all)
        ledger.leave_out(f"ECS desired counts ({counts}): one task per service; no "
                         "autoscaling, capacity providers, CodeDeploy blue/green or X-Ray "
                         "sidecars")

    @property
    def behind_load_balancer(self) -> list[Service]:
        return [s for s in self.all if s.load_balancers]

    @property
    def workers(self) -> list[Service]:
        return [s for s in self.all if not s.load_balancers]

    def worker_consuming(self, word: str) -> Service:
        """The worker whose command names `word` (a queue), else the first worker."""
        for service in self.workers:
            if word in service.command:
                return service
        if not self.workers:
            raise ContainerError("the templates deploy no worker service")
        return self.workers[0]

    def start(self, service: Service) -> ContainerProcess:
        process = self._launcher.start(service.spec, label=f"{service.name} task "
                                       f"{len(service.tasks) + 1}")
        service.tasks.append(process)
        return process

    def become_healthy(self, service: Service, process: ContainerProcess) -> str:
        """Its health check (then its target registration), or alive after a while."""
        if service.spec.definition.get("HealthCheck"):
            self._launcher.health_check(process)
            for binding in service.load_balancers:
                port = process.ports.get(int(binding["ContainerPort"]))
                if port is None:
                    raise ContainerError(f"{service.name}: no port {binding['ContainerPort']}")
                self._targets.register(str(binding["TargetGroupArn"]), f"127.0.0.1:{port}")
            ports = ", ".join(f"{c}->127.0.0.1:{h}" for c, h in process.ports.items())
            return f"health check passed (port {ports})"
        deadline = time.monotonic() + WORKER_SETTLE_S
        while time.monotonic() < deadline:
            if not process.alive():
                raise ContainerError(f"{process.label} exited with {process.popen.returncode}:"
                                     f"\n{process.log_tail()}")
            time.sleep(0.25)
        return f"running after {WORKER_SETTLE_S:.0f}s (no health check declared)"

    def deregister(self, process: ContainerProcess) -> None:
        for port in process.ports.values():
            self._targets.deregister(f"127.0.0.1:{port}")
