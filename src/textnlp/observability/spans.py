"""Spans of the work the platform does itself (model calls, jobs), in the process's tracer.

OpenTelemetry belongs to the ``api`` extra, so without it (a core install running the CLI)
these are no-ops; with it but tracing off, the API's global tracer is a no-op too.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any


def span(
    name: str, *, client: bool = False, **attributes: str | int
) -> AbstractContextManager[Any]:
    """A span named ``name`` under the current one; ``client`` for calls to another service."""
    try:
        from opentelemetry import trace
    except ImportError:
        return nullcontext()
    kind = trace.SpanKind.CLIENT if client else trace.SpanKind.INTERNAL
    return trace.get_tracer("textnlp").start_as_current_span(name, kind=kind, attributes=attributes)
