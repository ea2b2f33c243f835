"""Validation routes with their aggregates in the database, and the admin routes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api


def test_quality_similarity_and_their_aggregates(api: Api) -> None:
    headers = api.headers("alice")
    quality = api.client.post(
        "/api/v1/validate/quality",
        json={"texts": ["The product works well.", "Mail me at a@b.example"], "language": False},
        headers=headers,
    )
    assert quality.status_code == 200, quality.text
    body = quality.json()
    assert body["count"] == 2 and body["results"][1]["pii"][0]["kind"] == "email"
    assert body["summary"]["pii_findings"] == 0.5
    similar = api.client.post(
        "/api/v1/validate/similarity",
        json={"candidates": ["the cat sat"], "references": ["the cat sat"]},
        headers=headers,
    ).json()
    assert similar["pairs"][0]["rouge1"] == 1.0 and similar["corpus"]["cosine"] is None
    metrics = api.client.get("/api/v1/validate/metrics", headers=headers).json()
    assert "bleu" in metrics["measured"]["similarity"]
    aggregates = {(a["kind"], a["metric"]): a for a in metrics["aggregates"]}
    assert aggregates[("quality", "pii_findings")]["count"] >= 2
    assert aggregates[("quality", "pii_findings")]["max"] == 1.0
    assert aggregates[("similarity", "rouge1")]["mean"] == 1.0


def test_json_that_is_not_json_is_invalid_not_a_server_error(api: Api) -> None:
    """1e999 against a fractional multipleOf answered 500; NaN was valid JSON within range."""
    texts = ['{"a": 1e999}', '{"a": NaN}', '{"a": 0.5}']
    schema = {"properties": {"a": {"multipleOf": 0.5, "minimum": 0, "maximum": 1}}}
    answer = api.client.post(
        "/api/v1/validate/quality",
        json={"texts": texts, "expect_json": True, "json_schema": schema, "language": False},
        headers=api.headers("alice"),
    )
    assert answer.status_code == 200, answer.text
    assert [r["json_valid"] for r in answer.json()["results"]] == [False, False, True]


def test_health_reports_every_component(api: Api) -> None:
    response = api.client.get("/api/v1/admin/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "queue", "storage"}
    assert body["models"]["smollm2-135m"]["status"] == "ok"
    assert response.headers["x-request-id"]


def test_health_is_503_when_the_database_is_down(api: Api) -> None:
    from tests.conftest import free_port
    from textnlp.adapters.db.base import make_probe_engine

    app: Any = api.client.app
    checker = app.state.health
    original = checker.database
    # A database where nothing answers: a port of this machine with no server on it.
    checker.database = make_probe_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    checker.invalidate()
    try:
        response = api.client.get("/api/v1/admin/health")
    finally:
        checker.database.dispose()
        checker.database = original
        checker.invalidate()
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "down"


def test_a_cache_outage_degrades_health_without_taking_the_api_out_of_service(
    api: Api,
) -> None:
    """Redis failing over must not make every load balancer target unhealthy, nor ECS replace
    every task: the report says degraded with a 200, and the container's probe passes."""
    import redis

    from tests.conftest import free_port
    from textnlp.adapters.db.base import make_probe_engine

    app: Any = api.client.app
    checker = app.state.health
    original_redis, original_database = checker.redis, checker.database
    checker.redis = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    checker.invalidate()
    nowhere = make_probe_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    try:
        degraded = api.client.get("/api/v1/admin/health")
        checker.database = nowhere  # and the database goes away too
        checker.invalidate()
        down = api.client.get("/api/v1/admin/health")
        live = api.client.get("/api/v1/admin/health/live")
    finally:
        nowhere.dispose()
        checker.redis, checker.database = original_redis, original_database
        checker.invalidate()
    assert degraded.status_code == 200
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["checks"]["cache"]["status"] == "down"
    assert (down.status_code, down.json()["status"]) == (503, "down")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})  # probes nothing


def test_request_ids_are_echoed(api: Api) -> None:
    response = api.client.get("/api/v1/admin/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_openapi_documents_every_route(api: Api) -> None:
    paths = set(api.client.get("/openapi.json").json()["paths"])
    expected = {
        "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout",
        "/api/v1/generate/text", "/api/v1/generate/batch", "/api/v1/generate/status/{job_id}",
        "/api/v1/validate/quality", "/api/v1/validate/similarity", "/api/v1/validate/metrics",
        "/api/v1/models/list", "/api/v1/models/{model_id}", "/api/v1/models/{model_id}/invoke",
        "/api/v1/admin/health", "/api/v1/admin/metrics", "/api/v1/admin/cache/clear",
    }  # fmt: skip
    assert expected <= paths
    assert api.client.get("/docs").status_code == 200


def test_an_open_circuit_shows_in_health_and_the_model_list(api: Api) -> None:
    """Five consecutive outages of a remote model open its circuit: the model list and the
    health report say so (with the circuit's state), and the API stays healthy."""
    from textnlp.errors import BackendUnavailable

    app: Any = api.client.app
    checker = app.state.health
    # The breaker the Bedrock backend of this model records its calls in, in this process.
    circuits = checker.generation.pool._cloud_context().circuits
    breaker = circuits.get("bedrock:anthropic.claude-v2")
    for _ in range(5):
        breaker.record_failure(BackendUnavailable("Bedrock did not answer"))
    checker.invalidate()
    try:
        health = api.client.get("/api/v1/admin/health", headers=api.headers("admin"))
        anonymous = api.client.get("/api/v1/admin/health").json()
        as_alice = api.client.get("/api/v1/admin/health", headers=api.headers("alice")).json()
        listed = api.client.get("/api/v1/models/list", headers=api.headers("alice")).json()
        one = api.client.get("/api/v1/models/anthropic.claude-v2", headers=api.headers("alice"))
        as_admin = api.client.get("/api/v1/models/list", headers=api.headers("admin")).json()
    finally:
        breaker.record_success()
        checker.invalidate()
    assert health.status_code == 200  # not the default model: the API stays in service
    model = health.json()["models"]["anthropic.claude-v2"]
    assert model["status"] == "down" and "circuit open after 5 failures" in model["detail"]
    # The probe is public: anyone else reads each state alone, never a server's words.
    for report in (anonymous, as_alice):
        assert report["models"]["anthropic.claude-v2"] == {"status": "down", "detail": ""}
        assert all(part["detail"] == "" for part in report["checks"].values())
    # So is the models list: the circuit's last error is the admin's to read.
    info = {m["id"]: m for m in listed["data"]}["anthropic.claude-v2"]
    assert info["available"] is False and "Bedrock did not answer" not in info["reason"]
    assert one.json()["available"] is False and one.json()["reason"] == info["reason"]
    info = {m["id"]: m for m in as_admin["data"]}["anthropic.claude-v2"]
    assert "Bedrock did not answer" in info["reason"]


def test_a_route_whose_extra_is_missing_answers_501_naming_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server installed as `textnlp[embedded,api]` has no validation packages: the route
    says which extra to install (once a 500 "internal error"). None in sys.modules makes
    ``import textstat`` fail as an absent package does."""
    monkeypatch.setitem(sys.modules, "textstat", None)
    response = api.client.post(
        "/api/v1/validate/quality", json={"texts": ["Fine."]}, headers=api.headers("alice")
    )
    assert response.status_code == 501, response.text
    error = response.json()["error"]
    assert (error["type"], error["extra"], error["module"]) == (
        "missing_extra",
        "validation",
        "textstat",
    )
    assert "pip install 'textnlp[validation]'" in error["message"]


def test_a_monitor_probing_with_a_key_spends_none_of_its_rate_limit(tmp_path: Path) -> None:
    """The health route reads a credential to decide whether to show details; it took a
    rate-limit token each time, so a monitor polling with an admin's key emptied their bucket
    and the report silently lost its details."""
    from tests.support.api import start_api
    from textnlp.config import load_settings

    settings = load_settings(home=tmp_path, api={"rate_limit_burst": 3, "rate_limit_per_s": 0.01})
    for api in start_api(settings):
        headers = api.headers("admin")  # logging in takes no token of the user's bucket
        bodies = [api.client.get("/api/v1/admin/health", headers=headers) for _ in range(6)]
        assert all(b.status_code == 200 for b in bodies)
        # Each one the admin's view (details), the last as the first.
        assert all(b.json()["checks"]["queue"]["detail"] == "database table" for b in bodies)
        assert api.client.get("/api/v1/models/list", headers=headers).status_code == 200
