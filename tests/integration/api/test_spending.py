"""Per-user spending caps and job cost through the API, on SQLite and on the real PostgreSQL.

A priced OpenAI-compatible model faked at the HTTP level (``fake-priced``: $1 per 1K prompt
tokens, $2 per 1K completion tokens) costs $0.042 for "Say hello." with 20 completion tokens;
the default cap of every user is $0.10, so the third such request of a user is refused before
it runs: its worst case (prompt + ``max_tokens``) would pass the cap.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.jobs.test_api_jobs import work
from tests.support.api import PASSWORD, Api, make_settings, postgres_schema_url
from tests.support.api import start_api as start
from tests.support.job_backends import MODELS_YAML, register
from tests.support.priced_backend import PRICE
from textnlp.services.spending import SpendingService

TEXT = "/api/v1/generate/text"
BATCH = "/api/v1/generate/batch"
STATUS = "/api/v1/generate/status"
HELLO = {"prompt": "Say hello.", "model": "fake-priced", "max_tokens": 20, "temperature": 0.7}
HELLO_COST = (2 * PRICE["input_per_1k"] + 20 * PRICE["output_per_1k"]) / 1000


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home = tmp_path_factory.mktemp("spending-api")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    overrides: dict[str, Any] = {
        "models_file": models,
        "models": {"prices": {"fake-priced": PRICE}, "user_spending_cap_usd": 0.1},
        "queue": {"chunk_size": 4},
        "generation": {"max_count": 1000},
    }
    if request.param == "sqlite":
        yield from start(make_settings(home, **overrides))
        return
    for url in postgres_schema_url():
        yield from start(make_settings(home, url, **overrides))


def user(api: Api) -> tuple[str, str, dict[str, str]]:
    """A new user of this app: (id, name, bearer headers)."""
    name = f"u-{uuid.uuid4().hex[:8]}"
    created = api.client.app.state.auth.create_user(name, PASSWORD)  # type: ignore[attr-defined]
    return created.id, name, api.headers(name)


def spending(api: Api) -> SpendingService:
    service: SpendingService = api.client.app.state.spending  # type: ignore[attr-defined]
    return service


def assert_cap_error(response: Any, limit: float, reached: bool = True) -> dict[str, Any]:
    """``reached``: the spend is at the cap; else the request's worst case would pass it."""
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    said = "spending cap reached" if reached else "this request may cost up to"
    assert error["type"] == "quota_exceeded" and said in error["message"], error
    assert error["limit_usd"] == limit and (error["spent_usd"] >= limit) == reached
    assert "Retry-After" not in response.headers  # waiting does not lift a spending cap
    return error


def test_direct_generations_count_until_the_cap_refuses(api: Api) -> None:
    user_id, _, headers = user(api)
    answers = [api.client.post(TEXT, json=HELLO, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert spending(api).store.spend(user_id).spent_usd == pytest.approx(2 * HELLO_COST)
    # $0.084 spent: the third may cost $0.042 more, past the cap, so it does not run.
    error = assert_cap_error(answers[2], 0.1, reached=False)
    assert error["spent_usd"] == pytest.approx(2 * HELLO_COST)
    invoke = {"prompt": "Hi", "max_tokens": 20}
    invoked = api.client.post("/api/v1/models/fake-priced/invoke", json=invoke, headers=headers)
    assert_cap_error(invoked, 0.1, reached=False)
    streamed = api.client.post(TEXT, json={**HELLO, "stream": True}, headers=headers)
    assert_cap_error(streamed, 0.1, reached=False)
    # A request whose worst case still fits runs ($0.012 at most).
    small = api.client.post(TEXT, json={**HELLO, "max_tokens": 5}, headers=headers)
    assert small.status_code == 200, small.text
    assert spending(api).store.spend(user_id).spent_usd <= 0.1

    spending(api).record(user_id, 0.02)  # the user's other work reaches the cap
    assert_cap_error(api.client.post(TEXT, json=HELLO, headers=headers), 0.1)
    job = {"template": "product-review", "count": 3, "model": "fake-priced"}
    assert_cap_error(api.client.post(BATCH, json=job, headers=headers), 0.1)

    # A model without a price costs nothing: never refused.
    free = api.client.post(TEXT, json={**HELLO, "model": "fake-fast"}, headers=headers)
    assert free.status_code == 200, free.text
    assert (
        api.client.post(BATCH, json={**job, "model": "fake-fast"}, headers=headers).status_code
        == 202
    )


def test_a_users_own_cap_overrides_the_default(api: Api) -> None:
    user_id, username, headers = user(api)
    spending(api).set_user_cap(username, 1.0)
    for _ in range(4):  # $0.168: past the default, within the user's own cap
        assert api.client.post(TEXT, json=HELLO, headers=headers).status_code == 200
    # A cached answer (fixed seed, asked twice) costs nothing the second time.
    seeded = {**HELLO, "seed": 5}
    assert api.client.post(TEXT, json=seeded, headers=headers).json()["cached"] is False
    assert api.client.post(TEXT, json=seeded, headers=headers).json()["cached"] is True
    assert spending(api).store.spend(user_id).spent_usd == pytest.approx(5 * HELLO_COST)
    spending(api).set_user_cap(username, 0.15)
    assert_cap_error(api.client.post(TEXT, json=HELLO, headers=headers), 0.15)
    spending(api).set_user_cap(username, None)  # back to the default
    assert_cap_error(api.client.post(TEXT, json=HELLO, headers=headers), 0.1)


def test_websocket_streams_are_charged_and_capped(api: Api) -> None:
    user_id, _, headers = user(api)
    token = headers["Authorization"].removeprefix("Bearer ")
    with api.client.websocket_connect(f"/api/v1/generate/stream?access_token={token}") as socket:
        answers = []
        for _ in range(3):
            socket.send_text(json.dumps(HELLO))
            while (message := socket.receive_json())["type"] == "token":
                pass
            answers.append(message)
    assert [a["type"] for a in answers] == ["done", "done", "error"]
    assert answers[2]["error"]["type"] == "quota_exceeded"
    assert spending(api).store.spend(user_id).spent_usd == pytest.approx(2 * HELLO_COST)


def test_job_cost_and_job_cap_in_the_status(api: Api) -> None:
    user_id, username, headers = user(api)
    spending(api).set_user_cap(username, 10.0)
    plain = {"template": "product-review", "count": 6, "model": "fake-priced", "seed": 1}
    capped = {**plain, "count": 30, "seed": 2, "max_cost_usd": 0.5}
    first = api.client.post(BATCH, json=plain, headers=headers).json()
    second = api.client.post(BATCH, json=capped, headers=headers).json()
    assert first["cost_usd"] is None and second["max_cost_usd"] == 0.5
    work(api.settings)

    done = api.client.get(f"{STATUS}/{first['id']}", headers=headers).json()
    assert done["state"] == "succeeded" and done["cost_usd"] > 0
    results = api.client.get(f"{STATUS}/{first['id']}/results", headers=headers)
    lines = [json.loads(line) for line in results.text.splitlines()]
    assert done["cost_usd"] == pytest.approx(sum(r["provenance"]["cost_usd"] for r in lines))

    stopped = api.client.get(f"{STATUS}/{second['id']}", headers=headers).json()
    assert stopped["state"] == "failed" and "max_cost_usd" in stopped["error"]
    assert 0 < stopped["progress"]["done"] < 30 and 0 < stopped["cost_usd"] <= 0.5
    # It keeps the records it made, paid for, as its result.
    kept = api.client.get(f"{STATUS}/{second['id']}/results", headers=headers)
    assert kept.status_code == 200, kept.text
    kept_lines = [json.loads(line) for line in kept.text.splitlines()]
    assert len(kept_lines) == stopped["progress"]["done"]
    assert stopped["cost_usd"] == pytest.approx(
        sum(r["provenance"]["cost_usd"] for r in kept_lines)
    )
    # The user's spend counts their jobs.
    total = spending(api).store.spend(user_id).spent_usd
    assert total == pytest.approx(done["cost_usd"] + stopped["cost_usd"], rel=1e-5)
