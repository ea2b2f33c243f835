"""EMF lines, JSON logs with request ids and redaction, the caches."""

from __future__ import annotations

import io
import json
import logging

from textnlp.adapters.cache.completions import CompletionCache
from textnlp.adapters.cache.memory import MemoryCache
from textnlp.domain import Completion
from textnlp.observability.emf import EmfEmitter
from textnlp.observability.logging import JsonFormatter, request_id_var
from textnlp.observability.metrics import Metrics


def test_emf_lines_name_the_design_metrics() -> None:
    stream = io.StringIO()
    now = [0.0]
    metrics = Metrics(EmfEmitter("Custom", "textnlp-api", stream), clock=lambda: now[0])
    metrics.observe_request("/api/v1/generate/text", "POST", 200, 0.012)
    metrics.observe_tokens("smollm2-135m", 7)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["RequestLatency"] == 12.0 and lines[0]["Route"] == "/api/v1/generate/text"
    assert lines[0]["ServiceName"] == "textnlp-api"
    # The dashboard queries the service alone; finer dimensions are published beside it.
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["ServiceName"],
        ["ServiceName", "Route"],
    ]
    directive = lines[1]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Custom"
    assert directive["Metrics"][0]["Name"] == "TokensGenerated"
    assert b'textnlp_tokens_generated_total{model="smollm2-135m"} 7.0' in metrics.render()


def test_requests_per_task_counts_each_finished_minute() -> None:
    stream = io.StringIO()
    now = [0.0]
    metrics = Metrics(EmfEmitter("Custom", "textnlp-api", stream), clock=lambda: now[0])
    for _ in range(5):
        metrics.observe_request("/api/v1/admin/health", "GET", 200, 0.001)
    now[0] = 61.0
    metrics.observe_request("/api/v1/admin/health", "GET", 200, 0.001)
    points = [json.loads(line) for line in stream.getvalue().splitlines()]
    per_task = [p for p in points if "RequestsPerTask" in p]
    assert [p["RequestsPerTask"] for p in per_task] == [5.0]
    assert per_task[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ServiceName"]]


def test_json_logs_carry_the_request_id_and_redact_secrets() -> None:
    token = request_id_var.set("req-123")
    try:
        record = logging.LogRecord("textnlp", logging.INFO, __file__, 1, "login %s", ("ok",), None)
        record.password = "hunter2"
        record.prompt = "a private prompt"
        record.status = 200
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-123" and line["message"] == "login ok"
    assert line["password"] == "[redacted]" and line["prompt"] == "[redacted]"
    assert line["status"] == 200


def test_uvicorns_coloured_copy_of_a_message_is_left_out() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", (), None)
    record.color_message = "\x1b[32mStarted\x1b[0m"  # what uvicorn adds for its own formatter
    assert "color_message" not in json.loads(JsonFormatter().format(record))


def test_memory_cache_expires_evicts_and_clears() -> None:
    cache = MemoryCache(max_entries=2)
    cache.set("a", b"1", ttl_s=60)
    cache.set("b", b"2", ttl_s=60)
    cache.get("a")
    cache.set("c", b"3", ttl_s=60)  # evicts b, the least recently used
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    assert cache.clear() == 2 and cache.get("a") is None
    cache.set("old", b"x", ttl_s=-1)
    assert cache.get("old") is None


def test_completion_cache_counts_hits_and_misses() -> None:
    seen: list[bool] = []
    cache = CompletionCache(MemoryCache(), 60, seen.append)
    assert cache.get("k") is None
    cache.put("k", Completion(text="hi", finish_reason="stop", model="m"))
    hit = cache.get("k")
    assert hit is not None and hit.text == "hi"
    assert seen == [False, True]


def test_a_method_the_api_does_not_know_is_one_label() -> None:
    # A client may send any method ("M1", "M2"...): each would have been a series of its own.
    from textnlp.api.middleware import _method_label

    assert [_method_label({"method": m}) for m in ("GET", "POST", "M1", "M2")] == [
        "GET",
        "POST",
        "other",
        "other",
    ]
    assert _method_label({"type": "websocket"}) == "WS"


def test_a_host_without_a_gpu_exports_no_gpu_utilisation() -> None:
    metrics = Metrics()
    assert b"textnlp_gpu_utilisation_percent" not in metrics.render()  # absent, not 0
    metrics.observe_gpu(42.0)
    assert b"textnlp_gpu_utilisation_percent 42.0" in metrics.render()


def test_sql_detail_is_redacted_on_its_own_line_only() -> None:
    """PostgreSQL's DETAIL quotes the row; the JSON line stays JSON, and the lines after the
    DETAIL stay (an earlier redaction ran over the encoded line and cut it off)."""
    try:
        raise RuntimeError(
            'duplicate key value violates unique constraint "t_pkey"\n'
            "DETAIL:  Key (id)=(patient Jane Roe) already exists.\n"
            "[SQL: INSERT INTO t VALUES (%(v)s)]"
        )
    except RuntimeError:
        import sys

        record = logging.makeLogRecord(
            {"msg": "failed: DETAIL: Key (x)=(y)", "levelname": "ERROR", "exc_info": sys.exc_info()}
        )
    line = json.loads(JsonFormatter().format(record))  # still one JSON object
    assert "Jane Roe" not in line["exception"] and "(y)" not in line["message"]
    assert "DETAIL:  [redacted]\n[SQL: INSERT INTO t VALUES" in line["exception"]
