"""CloudWatch embedded metric format: one JSON log line per data point.

The CloudWatch agent (or the awslogs driver with EMF) turns these lines into the design's
metrics ``RequestLatency`` and ``TokensGenerated`` without an API call per request.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO


class EmfEmitter:
    def __init__(self, namespace: str, stream: IO[str] | None = None) -> None:
        self._namespace = namespace
        self._stream = stream

    def emit(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        line = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [sorted(dimensions)],
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            name: value,
            **dimensions,
        }
        stream = self._stream or sys.stdout
        stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        stream.flush()
