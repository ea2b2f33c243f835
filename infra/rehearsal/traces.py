"""The tasks' trace collector sidecars, stood in for by one OTLP receiver in process (the
journey's step 11, in `steps_metrics`, reads the X-Ray service map's edges off its spans).

Each task definition runs a collector sidecar (AWS's image, not the app's) that the app exports
OTLP to on localhost; the sidecar's port is an endpoint like the others, substituted by the
receiver's. What the collector then sends to X-Ray (segments) is AWS's part, not emulated.
"""

from __future__ import annotations

from typing import Any

from tests.support.otlp import Collector

from rehearsal.ledger import Ledger
from rehearsal.processes import ContainerLauncher, container_specs


def stand_in_for_collectors(
    deployment: Any, launcher: ContainerLauncher, collector: Collector, ledger: Ledger
) -> None:
    """A sidecar's `http://localhost:<port>` given to a container of its task -> the receiver
    (a task without the sidecar keeps its localhost URL, which nothing answers, as in AWS)."""
    for definition in deployment.deployed("AWS::ECS::TaskDefinition"):
        for spec in container_specs(definition):
            if spec.definition.get("Essential", True) is not False:
                continue
            for mapping in spec.definition.get("PortMappings", []):
                port = mapping.get("ContainerPort")
                task = launcher.task_url_substitutions.setdefault(spec.family, {})
                task[f"http://localhost:{port}"] = collector.url
    ledger.emulate("the trace collector sidecars: one OTLP/HTTP receiver in process (what a "
                   "collector sends to X-Ray is not emulated)")
