"""Spans of the work the platform does itself (model calls, jobs), in the process's tracer.

OpenTelemetry belongs to the ``api`` extra, so without it (a core install running the CLI)
these are no-ops; with it but tracing off, the API's global tracer is a no-op too.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal


def span(
    name: str,
    *,
    kind: Literal["internal", "client", "consumer"] = "internal",
    **attributes: str | int,
) -> AbstractContextManager[Any]:
    """A span named ``name`` under the current one (a new trace outside any): ``client`` for
    calls to another service, ``consumer`` for a queue message's work (X-Ray: a segment)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return nullcontext()
    kinds = {
        "internal": trace.SpanKind.INTERNAL,
        "client": trace.SpanKind.CLIENT,
        "consumer": trace.SpanKind.CONSUMER,
    }
    tracer = trace.get_tracer("textnlp")
    return tracer.start_as_current_span(name, kind=kinds[kind], attributes=attributes)
