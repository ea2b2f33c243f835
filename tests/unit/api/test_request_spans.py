"""``RequestContextMiddleware``'s spans and timings on a small app: a request is a SERVER span
named after its route (X-Ray makes a segment of it behind API Gateway), and a stream's life is
counted, never timed as a request's latency."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from textnlp.api.middleware import RequestContextMiddleware
from textnlp.observability.emf import EmfEmitter
from textnlp.observability.metrics import Metrics


def _app(metrics: Metrics, exporter: InMemorySpanExporter) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/events")
    def events() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"

        return StreamingResponse(lines(), media_type="text/event-stream")

    @app.websocket("/socket")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=1000,
        tracer=provider.get_tracer("test"),
    )
    return app


def test_requests_are_server_spans_and_streams_are_not_timed() -> None:
    stream, exporter = io.StringIO(), InMemorySpanExporter()
    metrics = Metrics(EmfEmitter("Custom", "textnlp-api", stream))
    with TestClient(_app(metrics, exporter)) as client:
        parent = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        assert client.get("/items/a1", headers={"X-Amzn-Trace-Id": parent}).status_code == 200
        assert client.get("/events").status_code == 200
        with client.websocket_connect("/socket") as websocket:
            assert websocket.receive_text() == "hi"
    spans = {span.name: span for span in exporter.get_finished_spans()}
    request = spans["GET /items/{item_id}"]  # the template, not /items/a1
    assert request.kind is SpanKind.SERVER
    assert request.parent is not None and format(request.parent.span_id, "016x") == (
        "53995c3f42cd8ad8"
    )
    timed = [
        json.loads(line)["Route"]
        for line in stream.getvalue().splitlines()
        if "RequestLatency" in json.loads(line)
    ]
    assert timed == ["/items/{item_id}"]  # the SSE stream and the WebSocket are not
    rendered = metrics.render().decode()
    assert 'route="/events"' in rendered and 'route="/socket"' in rendered  # still counted


def test_a_500_carries_its_request_id_and_so_does_its_traceback() -> None:
    """The traceback of an unexpected error is logged by Starlette's outermost handler, after
    the request context: it had ``request_id: -`` and the 500 no ``x-request-id``."""
    import logging

    from textnlp.api.errors import install_error_handlers
    from textnlp.observability.logging import request_id_var

    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=Metrics(None), max_body_bytes=1000)
    seen: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                seen.append(request_id_var.get())

    handler = Recorder()
    logging.getLogger("textnlp").addHandler(handler)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            answer = client.get("/boom", headers={"X-Request-Id": "req-500"})
    finally:
        logging.getLogger("textnlp").removeHandler(handler)
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "req-500"
    assert seen == ["req-500"]


def test_json_log_lines_carry_the_trace_id_in_xray_form() -> None:
    import logging

    from opentelemetry.sdk.trace import TracerProvider

    from textnlp.observability.logging import JsonFormatter

    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "name": "textnlp"})
    assert "trace_id" not in json.loads(JsonFormatter().format(record))  # no span: none
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record))
    hex_id = format(span.get_span_context().trace_id, "032x")
    assert line["trace_id"] == f"1-{hex_id[:8]}-{hex_id[8:]}"


def test_a_failed_requests_span_is_named_after_its_route_not_its_path() -> None:
    """An exception escaping the app (a 500) left the span named after the raw path, which
    holds ids and users' file names (a name per request), with no route or status."""
    from textnlp.api.errors import install_error_handlers

    app, exporter = FastAPI(), InMemorySpanExporter()

    @app.put("/uploads/{name}")
    def upload(name: str) -> None:
        raise RuntimeError("the storage failed")

    install_error_handlers(app)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    app.add_middleware(
        RequestContextMiddleware, metrics=Metrics(None), max_body_bytes=1000, tracer=tracer
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.put("/uploads/acme-customers.jsonl", content=b"x").status_code == 500
        assert client.request("M1", "/uploads/x").status_code == 405
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["PUT /uploads/{name}", "other /uploads/{name}"]
    assert spans[0].attributes is not None
    assert spans[0].attributes["http.route"] == "/uploads/{name}"
    assert spans[0].attributes["http.status_code"] == 500
