"""Prometheus metrics of the API, in a registry of their own (one per app, so tests and
several apps in one process do not collide), plus CloudWatch EMF lines where enabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from textnlp.observability.emf import (
    GPU_UTILIZATION,
    JOBS_PURGED,
    REQUEST_LATENCY,
    REQUESTS_PER_TASK,
    TOKENS_GENERATED,
    EmfEmitter,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


#: The window of ``RequestsPerTask``: the scaling policy reads it per minute.
REQUESTS_WINDOW_S = 60.0


class Metrics:
    def __init__(
        self, emf: EmfEmitter | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "textnlp_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "textnlp_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "textnlp_tokens_generated_total",
            "Completion tokens generated, by model.",
            ["model"],
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "textnlp_cache_lookups_total",
            "Response cache lookups by result (hit or miss).",
            ["result"],
            registry=self.registry,
        )
        #: Registered at the first sample: a host without a GPU exports none, not a 0.
        self.gpu_utilisation: Gauge | None = None
        self.rate_limited = Counter(
            "textnlp_rate_limited_total", "Requests refused by rate limits.", registry=self.registry
        )
        self._emf = emf
        # Labelled children by (route, method, status): ``labels()`` takes a lock and builds a
        # key on every call, a tenth of a health probe's cost. Routes are templates: bounded.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._clock = clock
        self._window_start = clock()
        self._window_requests = 0

    def observe_request(
        self, route: str, method: str, status: int, seconds: float, *, streamed: bool = False
    ) -> None:
        """One answered request. A stream's (SSE, WebSocket) time is its connection's life, not
        the latency of an answer: it is counted, not timed."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._request_children[key] = children
        children[0].inc()
        if not streamed:
            children[1].observe(seconds)
        if self._emf is not None:
            if not streamed:
                self._emf.emit(REQUEST_LATENCY, seconds * 1000.0, "Milliseconds", {"Route": route})
            self._count_for_scaling()

    def _count_for_scaling(self) -> None:
        """``RequestsPerTask``: this task's requests of each finished minute, emitted when the
        next request comes (a task with no requests publishes nothing, which is no load)."""
        now = self._clock()
        if now - self._window_start >= REQUESTS_WINDOW_S:
            assert self._emf is not None
            self._emf.emit(REQUESTS_PER_TASK, float(self._window_requests), "Count", {})
            self._window_start, self._window_requests = now, 0
        self._window_requests += 1

    def observe_tokens(self, model: str, count: int) -> None:
        if count <= 0:
            return
        self.tokens.labels(model).inc(count)
        if self._emf is not None:
            self._emf.emit(TOKENS_GENERATED, float(count), "Count", {"Model": model})

    def observe_gpu(self, percent: float) -> None:
        """The task's GPU utilisation over the last window (the generation service's scaling
        metric); published only where a GPU is present."""
        if self.gpu_utilisation is None:
            self.gpu_utilisation = Gauge(
                "textnlp_gpu_utilisation_percent",
                "Mean GPU utilisation of this process's GPUs (NVML), last sample.",
                registry=self.registry,
            )
        self.gpu_utilisation.set(percent)
        if self._emf is not None:
            self._emf.emit(GPU_UTILIZATION, percent, "Percent", {})

    def observe_purge(self, removed: int) -> None:
        """A purge that finished: how many jobs it deleted (published even when none)."""
        if self._emf is not None:
            self._emf.emit(JOBS_PURGED, float(removed), "Count", {})

    def observe_cache(self, hit: bool) -> None:
        self.cache_lookups.labels("hit" if hit else "miss").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
