"""Journey step 8: the dashboard's custom metrics have data points in CloudWatch (moto), under
exactly the namespace, names and dimensions the dashboard's widgets draw."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

from rehearsal.journey import Session, StepFailed

#: Namespaces of AWS's own metrics, which no application process publishes.
AWS_NAMESPACE_PREFIX = "AWS/"


def dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric, dimensions) of every metric widget; "." repeats the line above."""
    found = []
    for widget in body.get("widgets", []):
        previous: list[Any] = []
        for line in widget.get("properties", {}).get("metrics", []):
            fields = [f for f in line if not isinstance(f, dict)]
            fields = [previous[i] if f == "." and i < len(previous) else f
                      for i, f in enumerate(fields)]
            previous = fields
            if len(fields) < 2:
                continue
            namespace, name, *rest = (str(f) for f in fields)
            dimensions = tuple(zip(rest[::2], rest[1::2], strict=False))
            found.append((namespace, name, dimensions))
    return found


def metrics(session: Session) -> tuple[str, str]:
    dashboards = session.rehearsed.deployment.deployed("AWS::CloudWatch::Dashboard")
    if not dashboards:
        raise StepFailed("the templates define no dashboard")
    wanted = []
    for dashboard in dashboards:
        body = json.loads(dashboard.properties["DashboardBody"])
        wanted += [(str(dashboard.physical.ref), *m) for m in dashboard_metrics(body)
                   if not m[0].startswith(AWS_NAMESPACE_PREFIX)]
    if not wanted:
        raise StepFailed("the dashboards draw no custom metric")
    names = ", ".join(sorted({d for d, *_ in wanted}))
    components = f"dashboard {names}; EMF from the tasks' output -> CloudWatch (moto)"
    region = dashboards[0].stack.region
    cloudwatch = session.rehearsed.aws.client("cloudwatch", region)
    missing: list[str] = []
    seen: list[str] = []
    deadline = time.monotonic() + 20
    for _, namespace, name, dimensions in wanted:
        label = f"{namespace}/{name} {dict(dimensions)}"
        while True:
            count = _data_points(cloudwatch, namespace, name, dimensions)
            if count or time.monotonic() > deadline:
                break
            time.sleep(1)
        (seen if count else missing).append(f"{label}: {count}")
    if missing:
        published = _published(cloudwatch)
        raise StepFailed(f"no data for {'; '.join(missing)}; what the tasks published: "
                         f"{published}", components=components)
    return components, "; ".join(seen)


def _data_points(cloudwatch: Any, namespace: str, name: str,
                 dimensions: tuple[tuple[str, str], ...]) -> int:
    now = datetime.datetime.now(datetime.UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions],
        StartTime=now - datetime.timedelta(hours=2), EndTime=now + datetime.timedelta(minutes=5),
        Period=60, Statistics=["SampleCount"],
    )
    return int(sum(point.get("SampleCount", 0) for point in answer.get("Datapoints", [])))


def _published(cloudwatch: Any) -> list[str]:
    listed = cloudwatch.list_metrics().get("Metrics", [])
    return sorted({f"{m['Namespace']}/{m['MetricName']} "
                   f"{ {d['Name']: d['Value'] for d in m.get('Dimensions', [])} }"
                   for m in listed})[:12]
