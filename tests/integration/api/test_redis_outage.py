"""Redis unreachable (a port where nothing answers): logins and authenticated routes keep
answering on local buckets, limits included; past the outage window they answer 503."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import free_port
from tests.support.api import Api, make_settings, start_api
from textnlp.adapters.buckets import RedisBuckets

MODELS = "/api/v1/models/list"


@pytest.fixture(scope="module")
def outage_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = make_settings(
        tmp_path_factory.mktemp("redis-outage"),
        cache={"url": dead},
        api={"user_rate_limits": {"bob": [0.001, 3]}},
    )
    yield from start_api(settings)


def test_login_and_authenticated_routes_answer_during_an_outage(outage_api: Api) -> None:
    assert isinstance(outage_api.client.app.state.limiter, RedisBuckets)  # type: ignore[attr-defined]
    response = outage_api.client.get(MODELS, headers=outage_api.headers("alice"))
    assert response.status_code == 200, response.text


def test_limits_still_hold_on_local_buckets(outage_api: Api) -> None:
    bob = outage_api.headers("bob")
    statuses = [outage_api.client.get(MODELS, headers=bob).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_past_the_outage_window_limited_requests_answer_503(outage_api: Api) -> None:
    state = outage_api.client.app.state  # type: ignore[attr-defined]
    alice = outage_api.headers("alice")
    normal = state.limiter
    # The same limiter with a window of 0 s: the operator's fail-closed choice, or an outage
    # that has outlasted the window.
    state.limiter = RedisBuckets(state.platform.redis, outage_window_s=0)
    try:
        for response in (
            outage_api.client.get(MODELS, headers=alice),
            outage_api.client.post(
                "/api/v1/auth/login", json={"username": "alice", "password": "whatever-1"}
            ),
        ):
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["type"] == "service_unavailable" and error["dependency"] == "cache"
    finally:
        state.limiter = normal
