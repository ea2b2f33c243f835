"""CloudWatch embedded-metric-format log lines -> PutMetricData, as the awslogs driver's EMF
extraction does in ECS: a JSON line with `_aws.CloudWatchMetrics` becomes metrics in moto."""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any


class EmfForwarder:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self._lock = threading.Lock()
        self.forwarded = 0
        self.errors: list[str] = []

    def handle(self, line: str) -> bool:
        """Forward `line` if it is an EMF document; False when it is an ordinary log line."""
        stripped = line.strip()
        if not stripped.startswith("{") or '"_aws"' not in stripped:
            return False
        try:
            document = json.loads(stripped)
        except ValueError:
            return False
        directives = (document.get("_aws") or {}).get("CloudWatchMetrics")
        if not isinstance(directives, list):
            return False
        when = _timestamp(document["_aws"].get("Timestamp"))
        for directive in directives:
            self._put(directive, document, when)
        return True

    def _put(self, directive: dict[str, Any], document: dict[str, Any],
             when: datetime.datetime) -> None:
        dimension_sets = directive.get("Dimensions") or [[]]
        data = []
        for metric in directive.get("Metrics", []):
            value = document.get(metric.get("Name"))
            if value is None:
                continue
            values = value if isinstance(value, list) else [value]
            for names in dimension_sets:
                datum: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": [{"Name": n, "Value": str(document.get(n, ""))} for n in names],
                    "Values": [float(v) for v in values],
                    "Timestamp": when,
                }
                if metric.get("Unit"):
                    datum["Unit"] = metric["Unit"]
                data.append(datum)
        if not data:
            return
        try:
            with self._lock:
                self._cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
                self.forwarded += len(data)
        except Exception as exc:  # a bad metric must not stop the log reader
            self.errors.append(f"{directive.get('Namespace')}: {exc}")


def _timestamp(milliseconds: Any) -> datetime.datetime:
    try:
        return datetime.datetime.fromtimestamp(float(milliseconds) / 1000, datetime.UTC)
    except (TypeError, ValueError):
        return datetime.datetime.now(datetime.UTC)
