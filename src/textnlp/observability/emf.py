"""CloudWatch embedded metric format: one JSON log line per data point.

The awslogs driver's EMF extraction turns these lines into metrics without an API call per
request. Every point carries the ``ServiceName`` dimension (the ECS service, from
``observability.service_name``), which the deployment's dashboard and scaling policies query,
and is also published with its finer dimensions (route, model). The names below are the one
definition: ``infra/`` builds its dashboard widgets and scaling metrics from them.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO

SERVICE_DIMENSION = "ServiceName"
REQUEST_LATENCY = "RequestLatency"
TOKENS_GENERATED = "TokensGenerated"
#: Requests a task served in the last minute (the API service's scaling metric).
REQUESTS_PER_TASK = "RequestsPerTask"
#: Percent busy of the task's GPU (the generation service's scaling metric).
GPU_UTILIZATION = "GPUUtilization"
#: Jobs one successful `textnlp jobs purge` deleted (0 included): the retention's heartbeat,
#: whose absence for over a day the deployment alarms on (a purge that failed or never ran).
JOBS_PURGED = "JobsPurged"


class EmfEmitter:
    def __init__(self, namespace: str, service: str, stream: IO[str] | None = None) -> None:
        self._namespace = namespace
        self._service = service
        self._stream = stream

    def emit(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        """One point of ``name``, aggregated per service and per service + ``dimensions``."""
        sets = [[SERVICE_DIMENSION]]
        if dimensions:
            sets.append([SERVICE_DIMENSION, *sorted(dimensions)])
        line = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": sets,
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            name: value,
            SERVICE_DIMENSION: self._service,
            **dimensions,
        }
        stream = self._stream or sys.stdout
        stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        stream.flush()
