"""Journey steps 8 and 11: the dashboard's custom metrics have data points in CloudWatch (moto),
under exactly the namespace, names and dimensions the dashboard's widgets draw; the spans the
tasks exported draw the design's X-Ray service map."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

from tests.support.otlp import Collector, attributes

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
            count = data_points(cloudwatch, namespace, name, dimensions)
            if count or time.monotonic() > deadline:
                break
            time.sleep(1)
        (seen if count else missing).append(f"{label}: {count}")
    if missing:
        published = _published(cloudwatch)
        raise StepFailed(f"no data for {'; '.join(missing)}; what the tasks published: "
                         f"{published}", components=components)
    return components, "; ".join(seen)


def data_points(cloudwatch: Any, namespace: str, name: str,
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


#: The service map edges the app's spans draw (design section 10): what each looks like.
EDGES = {
    "ECS -> RDS Aurora": lambda a, _: a.get("db.system") == "postgresql",
    "ECS -> ElastiCache": lambda a, _: a.get("db.system") == "redis",
    "ECS -> S3": lambda a, _: a.get("rpc.service") == "S3",
    "ECS -> SQS": lambda a, _: a.get("rpc.service") == "SQS",
    # The session store, read on every authenticated request (the authorizer's reads are
    # X-Ray subsegments of the Lambda's own segment, which the rehearsal does not emulate).
    "ECS -> DynamoDB (sessions)": lambda a, _: a.get("rpc.service") == "DynamoDB",
    # SageMaker/Bedrock in the design: here the embedded model, through the same model span.
    "ECS -> the model": lambda _, name: name.startswith("model "),
}


def traces(session: Session) -> tuple[str, str]:
    collector: Collector = session.rehearsed.collector
    components = "the tasks' OTLP exports -> the collector sidecar (stand-in)"
    spans = list(collector.spans)
    if not spans:
        raise StepFailed("no span reached the collector", components=components)
    seen = {
        edge: sum(1 for s in spans if test(attributes(s), s.name)) for edge, test in EDGES.items()
    }
    missing = [edge for edge, count in seen.items() if count == 0]
    requests = [s for s in spans if s.name.split(" ", 1)[0] in {"GET", "POST", "PUT"}]
    if missing or not requests:
        raise StepFailed(f"{len(spans)} spans, no edge {missing} (requests: {len(requests)})",
                         components=components)
    # A job's worker segment continues the trace of the request that submitted it (its SQS
    # message's AWSTraceHeader): the API task -> SQS -> the worker task, one trace.
    submitted = {s.trace_id for s in requests}
    jobs = [s for s in spans if s.name.startswith("job ")]
    joined = [s for s in jobs if s.trace_id in submitted]
    if not joined:
        raise StepFailed(f"{len(jobs)} job spans, none in a request's trace",
                         components=components)
    shown = ", ".join(f"{edge} ({count})" for edge, count in seen.items())
    return components, (f"{len(spans)} spans; {len(requests)} request spans; {shown}; "
                        f"{len(joined)} of {len(jobs)} job spans in their request's trace")
