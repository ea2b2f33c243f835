"""Per-user spending caps and job cost through the API, on SQLite and on the real PostgreSQL.

A priced OpenAI-compatible model faked at the HTTP level (``fake-priced``: $1 per 1K prompt
tokens, $2 per 1K completion tokens) costs $0.042 for "Say hello." with 20 completion tokens;
the default cap of every user is $0.10, so the third such request of a user is refused before
it runs: its worst case (prompt + ``max_tokens``) would pass the cap.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest

from tests.integration.jobs.test_api_jobs import work
from tests.support.api import PASSWORD, Api, make_settings, postgres_schema_url
from tests.support.api import start_api as start
from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import run_worker
from tests.support.priced_backend import PRICE
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import QuotaExceeded
from textnlp.services.spending import Reservation, SpendingService

TEXT = "/api/v1/generate/text"
BATCH = "/api/v1/generate/batch"
STATUS = "/api/v1/generate/status"
HELLO = {"prompt": "Say hello.", "model": "fake-priced", "max_tokens": 20, "temperature": 0.7}
HELLO_COST = (2 * PRICE["input_per_1k"] + 20 * PRICE["output_per_1k"]) / 1000

#: A local model with a price that answers after 20 s: a request in flight long enough for
#: its client to go away (a local model's usage is priced by the pool, words as tokens).
SLOW_PRICED_YAML = """
  - id: fake-priced-slow
    backend: fake-slow
    context_length: 4096
    options: {delay_s: 20}
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home = tmp_path_factory.mktemp("spending-api")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML + SLOW_PRICED_YAML)
    overrides: dict[str, Any] = {
        "models_file": models,
        "models": {
            "prices": {"fake-priced": PRICE, "fake-priced-slow": PRICE},
            "user_spending_cap_usd": 0.1,
        },
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
    # Its worst case counts the prompt as the model reads it: 3 tokens of text and 5 for each
    # of the message and the reply's chat markers, then 20 tokens.
    assert "may cost up to $0.0530" in error["message"], error
    invoke = {"prompt": "Hi", "max_tokens": 20}
    invoked = api.client.post("/api/v1/models/fake-priced/invoke", json=invoke, headers=headers)
    assert_cap_error(invoked, 0.1, reached=False)
    streamed = api.client.post(TEXT, json={**HELLO, "stream": True}, headers=headers)
    assert_cap_error(streamed, 0.1, reached=False)
    # A request whose worst case still fits runs ($0.015 at most: its prompt as the model
    # reads it, 3 tokens and 5 for each message and the reply's chat markers, and 1 token).
    small = api.client.post(TEXT, json={**HELLO, "max_tokens": 1}, headers=headers)
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


def call_and_leave(
    api: Api, path: str, body: dict[str, Any], headers: dict[str, str], *, after_data: bool
) -> list[dict[str, Any]]:
    """Call the app as a client that goes away: after the first ``data:`` event it reads
    (``after_data``), else as soon as its request is sent. The ASGI messages the app sent."""
    sent: list[dict[str, Any]] = []
    content = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        gone = anyio.Event()
        if not after_data:
            gone.set()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": content, "more_body": False}
            if not gone.is_set():  # answered at once when gone: polls cancel at their await
                await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))
            if b"data:" in message.get("body", b""):
                gone.set()  # the client read one event and went away: nothing more is read
                await anyio.sleep_forever()

        await api.client.app(scope, receive, send)

    api.client.portal.call(run)  # type: ignore[union-attr]
    return sent


def settled(api: Api, user_id: str, done: Callable[[float], bool]) -> float:
    """The user's spend once ``done`` says the stream closed behind the response settled."""
    for _ in range(200):
        spent = spending(api).store.spend(user_id).spent_usd
        if done(spent):
            return spent
        time.sleep(0.05)
    return spent


def test_a_stream_the_client_drops_is_charged_for_what_it_generated(api: Api) -> None:
    """The client reads one token and goes: the stream settles its reservation with its
    prompt as the model reads it ("Say hello." 3 tokens and 5 for each of the message and the
    reply's chat markers) and the one token sent ("priced ", 2 tokens as remote models are
    estimated: 4 characters each): $0.017, not the whole $0.042, nor nothing."""
    user_id, _, headers = user(api)
    sent = call_and_leave(api, TEXT, {**HELLO, "stream": True}, headers, after_data=True)
    assert sent[0]["status"] == 200
    dropped = (13 * PRICE["input_per_1k"] + 2 * PRICE["output_per_1k"]) / 1000
    assert settled(api, user_id, lambda spent: spent < 0.053 - 1e-9) == pytest.approx(dropped)
    # OpenAI's chat completions stream alike.
    chat = {"model": "fake-priced", "max_tokens": 20, "stream": True}
    chat["messages"] = [{"role": "user", "content": "Say hello."}]
    sent = call_and_leave(api, "/v1/chat/completions", chat, headers, after_data=True)
    assert sent[0]["status"] == 200
    # Its worst case ($0.053) is held until the stream is closed, which the server may do
    # after the response ended (sse-starlette leaves a cancelled body to the event loop).
    spent = settled(api, user_id, lambda spent: spent < dropped + 0.053 - 1e-9)
    assert dropped < spent <= 2 * dropped + 1e-9  # its first event may carry no token yet
    # A whole stream is charged its usage, once.
    streamed = api.client.post(TEXT, json={**HELLO, "stream": True}, headers=headers)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    total = spending(api).store.spend(user_id).spent_usd
    assert total == pytest.approx(spent + HELLO_COST)


def test_a_request_the_client_leaves_is_charged_its_worst_case(api: Api) -> None:
    """Cancelled in flight (HTTP 499), a request settles its reservation at its worst case:
    the model may have generated it all. Nothing stays held."""
    user_id, _, headers = user(api)
    slow = {**HELLO, "model": "fake-priced-slow"}
    sent = call_and_leave(api, TEXT, slow, headers, after_data=False)
    assert sent[0]["status"] == 499
    # "Say hello." is 2 words, and 5 tokens for each of the message and the reply's markers.
    worst = (12 * PRICE["input_per_1k"] + 20 * PRICE["output_per_1k"]) / 1000
    assert spending(api).store.spend(user_id).spent_usd == pytest.approx(worst)


def test_concurrent_requests_reserve_their_worst_case_and_never_pass_the_cap(api: Api) -> None:
    """12 requests at once, each with a worst case of $0.03, under a $0.10 cap: the
    reservations are atomic in the database (a replica's own memory is not enough), so exactly
    3 run; each settles at what it cost, and the others find the rest free again."""
    user_id, _, _ = user(api)
    service = spending(api)
    spec = api.client.app.state.serving.service.spec("fake-priced")  # type: ignore[attr-defined]
    barrier = threading.Barrier(12)

    def request() -> Reservation | None:
        barrier.wait()
        try:
            return service.reserve(user_id, spec, 0.03)
        except QuotaExceeded:
            return None

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: request(), range(12)))
    held = [r for r in results if r is not None]
    assert len(held) == 3
    assert service.spent(user_id) == pytest.approx(0.09)
    for reservation in held:
        service.settle(reservation, 0.01)
    assert service.spent(user_id) == pytest.approx(0.03)
    service.settle(service.reserve(user_id, spec, 0.06), 0.05)  # the rest fits again
    assert service.spent(user_id) == pytest.approx(0.08)


def test_a_reservation_made_for_a_cancelled_request_is_released(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client goes while its request's reservation is being made: the reservation, made
    after all, is released at once (nothing ran), not left held."""
    user_id, _, _ = user(api)
    service = spending(api)
    generation = api.client.app.state.serving.service  # type: ignore[attr-defined]
    entered, proceed, released = threading.Event(), threading.Event(), threading.Event()
    settlements: list[tuple[float, float]] = []
    reserve, settle = service.reserve, service.settle

    def slow_reserve(*args: Any) -> Reservation:
        entered.set()
        proceed.wait(30)
        return reserve(*args)

    def recorded_settle(reservation: Reservation, cost_usd: float) -> None:
        settle(reservation, cost_usd)
        settlements.append((reservation.held_usd, cost_usd))
        released.set()

    monkeypatch.setattr(service, "reserve", slow_reserve)
    monkeypatch.setattr(service, "settle", recorded_settle)
    request = GenerationRequest.chat("Say hello.", params=GenerationParams(max_tokens=20))

    async def cancel_while_reserving() -> None:
        task = asyncio.ensure_future(generation.reserve(user_id, "fake-priced", [request]))
        await asyncio.to_thread(entered.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proceed.set()

    api.client.portal.call(cancel_while_reserving)  # type: ignore[union-attr]
    assert released.wait(30)
    assert len(settlements) == 1 and settlements[0][1] == 0.0
    assert settlements[0][0] == pytest.approx(0.053)  # what it held: its worst case
    assert service.spent(user_id) == pytest.approx(0.0)


def test_a_settlement_through_a_short_outage_still_counts_the_cost(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database failing as a request settles: the settlement is tried again (the worst
    case stayed counted for good, and the finished answer was a 503)."""
    from textnlp.errors import ServiceUnavailable

    user_id, _, headers = user(api)
    service = spending(api)
    settle, failures = service.settle, [1]

    def failing_once(reservation: Reservation, cost_usd: float) -> None:
        if failures:
            failures.pop()
            raise ServiceUnavailable("cannot reach the database", dependency="database")
        settle(reservation, cost_usd)

    monkeypatch.setattr(service, "settle", failing_once)
    answer = api.client.post(TEXT, json=HELLO, headers=headers)
    assert answer.status_code == 200, answer.text
    assert failures == []
    assert service.spent(user_id) == pytest.approx(HELLO_COST)  # the cost, not the worst case


def test_jobs_run_together_never_pass_their_owners_cap_together(api: Api) -> None:
    """Two jobs of one user on a priced model, run at the same time by one worker: each alone
    would stop at the user's cap, and together they stop there too (each request reserves its
    worst case in the database, where the other job's requests see it), not at twice it."""
    user_id, username, headers = user(api)
    spending(api).set_user_cap(username, 0.5)
    # max_tokens 20: a record's worst case is close to what it costs, so each job alone would
    # spend nearly the whole cap.
    body = {"template": "product-review", "count": 30, "model": "fake-priced"}
    body["params"] = {"max_tokens": 20}
    jobs = [
        api.client.post(
            BATCH,
            json={**body, "seed": seed},
            headers=headers,
        ).json()
        for seed in (11, 12)
    ]
    run_worker(api.settings, concurrency=2)
    states = [api.client.get(f"{STATUS}/{j['id']}", headers=headers).json() for j in jobs]
    assert all(s["state"] == "failed" and "spending cap" in s["error"] for s in states), states
    spent = spending(api).spent(user_id)
    # Within the cap, and stopped only when a record's worst case ($0.12) no longer fitted.
    assert 0.5 - 0.12 < spent <= 0.5
    # Nothing is held once the jobs ended: the spend is what their records cost.
    assert sum(s["cost_usd"] or 0.0 for s in states) == pytest.approx(spent)
