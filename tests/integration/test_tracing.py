"""Traces as the deployment's collector receives them: the API exports OTLP over HTTP to a
local socket (standing in for the task's collector sidecar), and the spans draw the design's
service map edges the code can produce: the API's requests, and under them PostgreSQL (Aurora),
Redis (ElastiCache), S3, SQS, the DynamoDB session store and the model calls, with X-Ray trace
ids and the ``X-Amzn-Trace-Id`` header honoured.

Real parts: the machine's PostgreSQL and Redis, moto's server for S3, SQS and DynamoDB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from tests.support.api import PASSWORD, postgres_schema_url
from tests.support.job_backends import MODELS_YAML, register
from tests.support.otlp import Collector, attributes
from tests.support.queues import private_queues
from tests.support.sessions import create_session_table, dynamodb
from textnlp.adapters.queue.sqs import ensure_sqs_queues
from textnlp.api.app import create_app
from textnlp.config import Settings, load_settings

BUCKET = "textnlp-traces"


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.close()


@pytest.fixture
def traced_settings(
    collector: Collector, tmp_path: Path, redis_url: str, aws_env: str
) -> Iterator[Settings]:
    register()
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    sessions_table = create_session_table(dynamodb(aws_env))
    for url in postgres_schema_url():
        settings = load_settings(
            home=tmp_path / "home",
            models_file=models,
            database={"url": url},
            cache={"url": redis_url},
            queue={"backend": "sqs", **private_queues()},
            storage={"backend": "s3", "bucket": BUCKET},
            auth={"session_store": "dynamodb", "session_table": sessions_table},
            aws={"region": "us-east-1", "endpoint_url": aws_env},
            observability={
                "trace_exporter": "otlp",
                "otlp_endpoint": collector.url,
                "service_name": "textnlp-api",
            },
        )
        client = boto3.client("sqs", region_name="us-east-1", endpoint_url=aws_env)
        ensure_sqs_queues(client, settings)
        boto3.client("s3", region_name="us-east-1", endpoint_url=aws_env).create_bucket(
            Bucket=BUCKET
        )
        yield settings


def test_the_api_exports_the_design_service_map(
    traced_settings: Settings, collector: Collector
) -> None:
    parent = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    app = create_app(traced_settings)
    try:
        with TestClient(app) as client:
            app.state.auth.create_user("tracer", PASSWORD)
            login = client.post(
                "/api/v1/auth/login",
                json={"username": "tracer", "password": PASSWORD},
                headers={"X-Amzn-Trace-Id": parent},
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            generated = client.post(
                "/api/v1/generate/text",
                json={"prompt": "hi", "model": "fake-fast", "max_tokens": 4, "seed": 1},
                headers=headers,
            )
            assert generated.status_code == 200, generated.text
            uploaded = client.put(
                "/api/v1/generate/batch/uploads/p.jsonl",
                content=b'{"prompt": "a"}\n',
                headers=headers,
            )
            assert uploaded.status_code == 201, uploaded.text
            root = f"1-{int(time.time()):08x}-cd862e3fe1be46a994272793"  # X-Ray: time first
            submitter = f"Root={root};Parent=63995c3f42cd8ad8;Sampled=1"
            job = client.post(
                "/api/v1/generate/batch",
                json={"template": "qa-pairs", "count": 2, "model": "fake-fast"},
                headers={**headers, "X-Amzn-Trace-Id": submitter},
            )
            assert job.status_code == 202, job.text
            app.state.platform.tracer_provider.force_flush()
            # The job's SQS message carries the submitting request's trace (AWSTraceHeader).
            (message,) = app.state.platform.queues.generation.receive(wait_s=2)
            assert message.trace_header is not None
            assert message.trace_header.startswith(f"Root={root};")
    finally:
        _uninstrument()
    deadline = time.monotonic() + 10
    while not collector.spans and time.monotonic() < deadline:
        time.sleep(0.05)
    spans = collector.spans
    names = {span.name for span in spans}
    by_system = {attributes(span).get("db.system") for span in spans}
    services = {attributes(span).get("rpc.service") for span in spans}
    # ECS -> Aurora, ECS -> ElastiCache, ECS -> S3, SQS and the session store, ECS -> the model.
    assert "postgresql" in by_system, names
    assert "redis" in by_system, names
    assert {"S3", "SQS", "DynamoDB"} <= services, services
    assert any(name == "model fake-fast" for name in names), names
    # The request spans, under API Gateway's trace (the header it sends), with X-Ray ids.
    requests = [s for s in spans if s.name.startswith(("POST ", "PUT ", "GET "))]
    assert requests
    login_span = next(s for s in requests if s.name == "POST /api/v1/auth/login")
    assert login_span.trace_id.hex() == "5759e988bd862e3fe1be46a994272793"
    for span in requests:
        epoch = int.from_bytes(span.trace_id[:4], "big")
        assert span is login_span or abs(epoch - time.time()) < 3600  # X-Ray: time first
    # The database spans are children of the request that made them.
    request_ids = {s.span_id for s in requests}
    assert any(
        attributes(s).get("db.system") == "postgresql" and s.parent_span_id in request_ids
        for s in spans
    )


def _uninstrument() -> None:
    """The instrumentations patch libraries for the process; the other tests run without."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    BotocoreInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
