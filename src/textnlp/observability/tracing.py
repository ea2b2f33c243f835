"""OpenTelemetry tracing with AWS X-Ray compatible trace ids and ``X-Amzn-Trace-Id`` propagation.

Off by default (``observability.trace_exporter = none``): no provider is installed and the
API's spans are no-ops. X-Ray wants the first 32 bits of a trace id to be the start time in
seconds; ``XRayIdGenerator`` does that. ``XRayPropagator`` reads and writes the header
``Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    DefaultGetter,
    DefaultSetter,
    Getter,
    Setter,
    TextMapPropagator,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator

from textnlp.config import ObservabilitySettings

XRAY_HEADER = "x-amzn-trace-id"


class XRayIdGenerator(IdGenerator):
    def generate_span_id(self) -> int:
        return random.getrandbits(64)

    def generate_trace_id(self) -> int:
        return (int(time.time()) << 96) | random.getrandbits(96)


def format_xray_header(trace_id: int, span_id: int, sampled: bool) -> str:
    hex_id = f"{trace_id:032x}"
    return f"Root=1-{hex_id[:8]}-{hex_id[8:]};Parent={span_id:016x};Sampled={int(sampled)}"


def parse_xray_header(value: str) -> tuple[int, int, bool] | None:
    parts = dict(item.strip().split("=", 1) for item in value.split(";") if "=" in item)
    root, parent = parts.get("Root", ""), parts.get("Parent", "")
    pieces = root.split("-")
    if len(pieces) != 3 or pieces[0] != "1" or len(pieces[1]) != 8 or len(pieces[2]) != 24:
        return None
    try:
        trace_id = int(pieces[1] + pieces[2], 16)
        span_id = int(parent, 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, parts.get("Sampled") == "1"


class XRayPropagator(TextMapPropagator):
    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = DefaultGetter(),  # type: ignore[assignment]  # noqa: B008
    ) -> Context:
        values = getter.get(carrier, XRAY_HEADER) or getter.get(carrier, "X-Amzn-Trace-Id")
        parsed = parse_xray_header(values[0]) if values else None
        if parsed is None:
            return context or Context()
        trace_id, span_id, sampled = parsed
        span_context = trace.SpanContext(
            trace_id=trace_id,
            span_id=span_id,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0),
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = DefaultSetter(),  # type: ignore[assignment]  # noqa: B008
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        setter.set(
            carrier,
            "X-Amzn-Trace-Id",
            format_xray_header(
                span_context.trace_id, span_context.span_id, span_context.trace_flags.sampled
            ),
        )

    @property
    def fields(self) -> set[str]:
        return {"X-Amzn-Trace-Id"}


def make_tracer(settings: ObservabilitySettings) -> tuple[trace.Tracer, Any]:
    """A tracer and the provider to shut down (None when tracing is off)."""
    if settings.trace_exporter == "none":
        return trace.NoOpTracer(), None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if settings.trace_exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint or None)
    provider = TracerProvider(
        id_generator=XRayIdGenerator(),
        resource=Resource.create({"service.name": settings.service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer("textnlp.api"), provider


def headers_carrier(raw: list[tuple[bytes, bytes]]) -> Mapping[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
