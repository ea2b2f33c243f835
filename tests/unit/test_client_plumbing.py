"""The Python client's plumbing against a server faked at the HTTP level (``httpx``'s
``MockTransport``): wrong arguments, an API that cannot be reached or refuses for now, answers
that are not the API's, and a refused access token on streams and downloads, each an
``ApiError`` (an audit found raw pydantic, httpx and ``KeyError`` exceptions, no retry, and
refreshes only on plain requests)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import free_port
from textnlp.client import ApiError, ApiUnreachable, AsyncTextNLPClient, TextNLPClient

COMPLETION = {
    "id": "cmpl-1",
    "model": "m",
    "choices": [{"index": 0, "text": "hi", "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **options: object) -> TextNLPClient:
    return TextNLPClient("http://api.test", transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]


def logged_in(answer: TextNLPClient | AsyncTextNLPClient) -> None:
    answer.tokens.access_token, answer.tokens.refresh_token = "old", "r1"
    answer.tokens.expires_at = float("inf")  # not due: only a 401 makes it refresh


def tokens(access: str, refresh: str) -> httpx.Response:
    body = {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}
    return httpx.Response(200, json={**body, "expires_in": 900})


def test_a_wrong_argument_is_a_422_before_anything_is_sent() -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=COMPLETION)

    api = client(server)
    for fields in ({"prompt": "x", "max_tokns": 6}, {"prompt": "x", "temperature": -1}):
        with pytest.raises(ApiError) as refused:
            api.generate(**fields)
        assert refused.value.status == 422 and refused.value.type == "validation_error"
    with pytest.raises(ApiError, match="stream: set by the method"):
        list(api.stream(prompt="x", stream=True))
    with pytest.raises(ApiError, match="unknown field"):
        api.invoke("m", prompt="x", max_tokns=3)
    assert sent == []


def test_an_api_that_cannot_be_reached_is_api_unreachable() -> None:
    nowhere = TextNLPClient(f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(ApiUnreachable, match="cannot reach the API at http://127.0.0.1"):
        nowhere.generate(prompt="x")
    with pytest.raises(ApiUnreachable) as refused:
        list(nowhere.stream_events(prompt="x"))
    assert refused.value.status == 503 and refused.value.type == "connection_error"
    with pytest.raises(ApiUnreachable):
        TextNLPClient("127.0.0.1:8000").generate(prompt="x")  # no scheme


def test_an_unreachable_apis_message_holds_no_credential_of_its_url() -> None:
    """A base URL may carry a proxy's basic-auth password or a token in its query: the message,
    which the CLI prints and CI logs keep, names the host without them."""
    port = free_port()
    nowhere = TextNLPClient(f"http://ops:hunter2pw@127.0.0.1:{port}/?token=tok3n", max_retries=0)
    with pytest.raises(ApiUnreachable) as refused:
        nowhere.generate(prompt="x")
    message = refused.value.message
    assert f"127.0.0.1:{port}" in message
    assert "hunter2pw" not in message and "tok3n" not in message


def test_a_request_refused_for_now_is_sent_again_after_its_retry_after() -> None:
    answers = [
        httpx.Response(503, headers={"retry-after": "0"}, json={"error": {"message": "busy"}}),
        httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "slow"}}),
        httpx.Response(200, json=COMPLETION),
    ]
    api = client(lambda r: answers.pop(0))
    assert api.generate(prompt="x").choices[0].text == "hi" and answers == []
    # A wait longer than the client waits for is the caller's, with the seconds it asks for.
    later = httpx.Response(429, headers={"retry-after": "120"}, json={"error": {"message": "x"}})
    with pytest.raises(ApiError) as refused:
        client(lambda r: later).generate(prompt="x")
    assert refused.value.status == 429 and refused.value.retry_after == 120.0
    # A quota (a spending cap, the uploads') says no Retry-After: waiting does not help, and a
    # second upload of the body would be refused as the first was.
    sent: list[httpx.Request] = []
    quota = {"error": {"type": "quota_exceeded", "message": "over your cap"}}

    def capped(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(429, json=quota)

    with pytest.raises(ApiError) as refused:
        client(capped).upload_prompts("p.jsonl", b'{"prompt": "x"}\n')
    assert refused.value.type == "quota_exceeded" and len(sent) == 1
    # API Gateway's own throttling says no Retry-After either: it passes, so it is retried.
    throttled = [
        httpx.Response(429, json={"message": "Too Many Requests"}),
        httpx.Response(200, json=COMPLETION),
    ]
    assert client(lambda r: throttled.pop(0)).generate(prompt="x").choices[0].text == "hi"


def test_an_answer_that_is_not_the_apis_is_a_502() -> None:
    page = httpx.Response(200, headers={"content-type": "text/html"}, text="<html>proxy</html>")
    for call in (
        lambda api: api.generate(prompt="x"),
        lambda api: api.job_status("0" * 32),
        lambda api: api.upload_prompts("p.jsonl", b"{}"),
    ):
        with pytest.raises(ApiError) as refused:
            call(client(lambda r: page))
        assert refused.value.status == 502 and refused.value.type == "bad_response"
    with pytest.raises(ApiError, match="no 'cleared'"):
        client(lambda r: httpx.Response(200, json={"foo": 1})).clear_cache()
    # A proxy's 503 page is the 503 it is.
    down = httpx.Response(503, headers={"content-type": "text/plain"}, text="down for repairs")
    with pytest.raises(ApiError, match="down for repairs") as refused:
        client(lambda r: down).health()
    assert refused.value.status == 503


def test_a_refused_token_is_refreshed_on_streams_and_downloads_too() -> None:
    refreshes: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/refresh":
            refreshes.append(json.loads(request.content)["refresh_token"])
            return tokens(f"new{len(refreshes)}", f"r{len(refreshes) + 1}")
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401, json={"error": {"message": "token expired"}})
        if request.url.path.endswith("/results"):
            return httpx.Response(200, content=b'{"index": 0}\n')
        chunk = {"choices": [{"index": 0, "text": "hi", "finish_reason": "stop"}]}
        wire = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=wire)

    api = client(server)
    logged_in(api)
    assert list(api.stream(prompt="x")) == ["hi"]
    logged_in(api)
    sink = io.BytesIO()
    assert api.download_results("0" * 32, sink) == len(b'{"index": 0}\n')
    assert refreshes == ["r1", "r1"]


async def test_requests_refused_at_once_share_one_refresh() -> None:
    """Three refused at once: one refresh; a second with the spent token would be refused
    (and, on the server, revoke the whole family)."""
    refreshes: list[str] = []

    async def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/refresh":
            refreshes.append(json.loads(request.content)["refresh_token"])
            await asyncio.sleep(0.05)
            return tokens("new", "r2")
        if request.headers["authorization"] != "Bearer new":
            return httpx.Response(401, json={"error": {"message": "token expired"}})
        return httpx.Response(200, json=[])

    api = AsyncTextNLPClient("http://api.test", transport=httpx.MockTransport(server))
    logged_in(api)
    assert await asyncio.gather(*(api.list_jobs() for _ in range(3))) == [[], [], []]
    assert refreshes == ["r1"]


def test_a_refresh_that_never_reached_the_server_keeps_the_session() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    api = client(down)
    logged_in(api)
    with pytest.raises(ApiUnreachable):
        api.refresh()
    assert api.tokens.refresh_token == "r1"


def test_a_model_id_is_sent_escaped() -> None:
    paths: list[bytes] = []

    def server(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        return httpx.Response(200, json=COMPLETION)

    api = client(server, api_key="k")
    api.invoke("org/llama3", prompt="x")
    api.invoke("x?y=1", prompt="x")
    api.invoke("..", prompt="x")
    assert paths == [
        b"/api/v1/models/org%2Fllama3/invoke",
        b"/api/v1/models/x%3Fy%3D1/invoke",
        b"/api/v1/models/%2E%2E/invoke",
    ]


PRESIGNED = "https://textnlp-prod.s3.amazonaws.com/generated/batch-jobs/j1/records.jsonl"


def stored_results(request: httpx.Request) -> httpx.Response:
    """The API on S3 storage: results answer 307 to a presigned URL, which S3 serves alone."""
    if request.url.host == "api.test":
        return httpx.Response(307, headers={"location": PRESIGNED + "?X-Amz-Signature=abc"})
    if "authorization" in request.headers:  # S3 refuses a second authentication mechanism
        return httpx.Response(400, text="<Error><Code>InvalidArgument</Code></Error>")
    return httpx.Response(200, content=b'{"index": 0}\n{"index": 1}\n')


def test_results_on_s3_storage_are_fetched_from_their_presigned_url() -> None:
    """The client saved the empty 307 and said it had (CLI: "saved 0 bytes")."""
    api = client(stored_results)
    logged_in(api)
    sink = io.BytesIO()
    assert api.download_results("0" * 32, sink) == len(sink.getvalue()) > 0
    assert sink.getvalue().count(b"\n") == 2


def test_results_on_s3_storage_async() -> None:
    async def run() -> bytes:
        transport = httpx.MockTransport(stored_results)
        async with AsyncTextNLPClient("http://api.test", transport=transport) as api:  # type: ignore[arg-type]
            logged_in(api)
            sink = io.BytesIO()
            await api.download_results("0" * 32, sink)
            return sink.getvalue()

    assert asyncio.run(run()).count(b"\n") == 2


def test_a_redirect_to_no_url_is_still_an_error() -> None:
    api = client(lambda request: httpx.Response(307, headers={"location": "/uploads"}))
    logged_in(api)
    with pytest.raises(ApiError, match="unexpected redirect"):
        api.download_results("0" * 32, io.BytesIO())
