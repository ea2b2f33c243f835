"""Spans of the work the platform does itself (model calls, jobs), in the process's tracer.

OpenTelemetry belongs to the ``api`` extra, so without it (a core install running the CLI)
these are no-ops; with it but tracing off, the API's global tracer is a no-op too.

A job's queue message carries the trace of the request that submitted it as an X-Ray header
(``trace_header``, SQS's ``AWSTraceHeader``): the worker's span of the job continues that
trace, so X-Ray shows a job under the request that made it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal


def span(
    name: str,
    *,
    kind: Literal["internal", "client", "consumer"] = "internal",
    parent: str | None = None,
    **attributes: str | int,
) -> AbstractContextManager[Any]:
    """A span named ``name`` under the current one (a new trace outside any): ``client`` for
    calls to another service, ``consumer`` for a queue message's work (X-Ray: a segment).
    ``parent``: an X-Ray trace header (``trace_header``) whose trace the span continues."""
    try:
        from opentelemetry import trace
    except ImportError:
        return nullcontext()
    kinds = {
        "internal": trace.SpanKind.INTERNAL,
        "client": trace.SpanKind.CLIENT,
        "consumer": trace.SpanKind.CONSUMER,
    }
    context = None
    if parent:
        from opentelemetry.propagators.aws import AwsXRayPropagator

        # A malformed header gives no parent: the span starts a trace of its own.
        context = AwsXRayPropagator().extract({_HEADER: parent})
    tracer = trace.get_tracer("textnlp")
    return tracer.start_as_current_span(
        name, context=context, kind=kinds[kind], attributes=attributes
    )


_HEADER = "X-Amzn-Trace-Id"


def trace_header() -> str | None:
    """The current trace as an X-Ray header, for a message to carry; None outside a recorded
    trace (tracing off, or OpenTelemetry not installed)."""
    try:
        from opentelemetry import trace
        from opentelemetry.propagators.aws import AwsXRayPropagator
    except ImportError:
        return None
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    AwsXRayPropagator().inject(carrier)
    return carrier.get(_HEADER)
