"""OpenTelemetry tracing with AWS X-Ray ids and ``X-Amzn-Trace-Id`` propagation, from the
OpenTelemetry AWS packages (``AwsXRayIdGenerator``, ``AwsXRayPropagator``), and spans for the
design's service map: the API's requests, and beneath them the database (SQLAlchemy), Redis,
AWS calls (botocore: S3, SQS, SNS, Secrets Manager, SageMaker, Bedrock) and model calls.

Off by default (``observability.trace_exporter = none``): no provider, no instrumentation, and
the API's spans are no-ops. In the deployment each task exports OTLP over HTTP to its
collector sidecar (the AWS Distro for OpenTelemetry collector), which sends X-Ray segments.
The instrumentations patch their libraries for the whole process, so they are installed once,
by ``make_tracer``, and only when tracing is on.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.propagators.aws import AwsXRayPropagator

from textnlp.config import ObservabilitySettings

#: Re-exported for the middleware: the propagator of the ``X-Amzn-Trace-Id`` header.
XRayPropagator = AwsXRayPropagator
TRACER_NAME = "textnlp"


def make_tracer(settings: ObservabilitySettings) -> tuple[trace.Tracer, Any]:
    """A tracer and the provider to shut down (None when tracing is off)."""
    if settings.trace_exporter == "none":
        return trace.NoOpTracer(), None
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if settings.trace_exporter == "console":
        # To stderr: stdout is a command's output (an API key, a job's JSON) for its reader.
        exporter = ConsoleSpanExporter(out=sys.stderr)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint or None)
    provider = TracerProvider(
        id_generator=AwsXRayIdGenerator(),
        resource=Resource.create({"service.name": settings.service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    # The process's provider: spans made with ``trace.get_tracer`` (model calls, jobs) and
    # the instrumented libraries' all land in it. Set once; a second app in the same process
    # (tests) keeps the first.
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    _instrument_libraries(provider)
    return provider.get_tracer(TRACER_NAME), provider


def _instrument_libraries(provider: Any) -> None:
    """Client spans of Redis and botocore, for the whole process (idempotent)."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (BotocoreInstrumentor(), RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)


def instrument_engine(engine: Any, provider: Any) -> None:
    """Client spans of every statement on ``engine`` (one SQLAlchemy engine)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares SQLAlchemy < 2.1; its engine event hooks work on 2.1 (the
    # tracing test checks the spans), so the version check is skipped.
    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=provider, skip_dep_check=True
    )


class _Headers(dict[str, str]):
    """ASGI headers (lower-case names) looked up without regard to case: the propagator asks
    for ``X-Amzn-Trace-Id``."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def headers_carrier(raw: list[tuple[bytes, bytes]]) -> Mapping[str, str]:
    return _Headers((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw)
