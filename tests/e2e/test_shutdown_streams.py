"""``textnlp serve`` stopped (SIGTERM) while it streams an answer: the stream ends with an
error, never as if the answer were whole. sse-starlette ended an open stream's body cleanly on
shutdown, so a client (curl, the ``openai`` SDK) took the text cut after one chunk for the
complete answer, with no error and no final chunk, while the model generated on.

The embedded model answers a long essay (hundreds of tokens); the server is signalled once the
first chunk has arrived. The native route must end with its ``error`` event (a 503
``service_unavailable``), ``/v1`` with OpenAI's error chunk (the SDK raises ``APIError``), and
the server must then exit (no stream holds its shutdown).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.serve import Served, ServeUser, serve
from textnlp.client import ApiUnreachable, AsyncTextNLPClient, TextNLPClient

pytestmark = pytest.mark.slow
ESSAY = "Write a long essay, in ten paragraphs, about the history of Rome."
#: Generous: how long the server may take to exit once signalled.
EXIT_TIMEOUT_S = 60


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Served, str]]:
    """``textnlp serve`` on the embedded model, and an API key."""
    with serve(tmp_path, users=[ServeUser("dana", "dana-password-123")]) as served:
        yield served, served.api_key("dana")


def terminate(served: Served) -> subprocess.Popen[bytes]:
    assert served.process is not None
    served.process.send_signal(signal.SIGTERM)
    return served.process


def test_a_native_stream_cut_by_shutdown_ends_with_an_error_event(
    server: tuple[Served, str],
) -> None:
    served, key = server
    body = {"prompt": ESSAY, "max_tokens": 400, "temperature": 0, "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    lines: list[str] = []
    with httpx.stream(
        "POST", f"{served.url}/api/v1/generate/text", json=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        process = None
        for line in response.iter_lines():
            lines.append(line)
            if process is None and line.startswith("data: {"):
                process = terminate(served)  # the first chunk has come
    assert process is not None, lines
    events = [(i, line) for i, line in enumerate(lines) if line == "event: error"]
    assert events, f"no error event: {lines[-5:]}"
    at = events[0][0]
    error = json.loads(lines[at + 1].removeprefix("data: "))["error"]
    assert error["type"] == "service_unavailable"
    assert error["status"] == 503
    chunks = [json.loads(line[6:]) for line in lines[:at] if line.startswith("data: {")]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)  # none claims an end
    assert process.wait(timeout=EXIT_TIMEOUT_S) is not None


def test_an_openai_stream_cut_by_shutdown_raises_in_the_sdk(server: tuple[Served, str]) -> None:
    served, key = server
    texts: list[str] = []
    process = None
    with (
        openai.OpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0, timeout=60) as sdk,
        pytest.raises(openai.APIError) as raised,
    ):
        stream = sdk.chat.completions.create(
            model="smollm2-135m",
            messages=[{"role": "user", "content": ESSAY}],
            max_tokens=400,
            temperature=0,
            stream=True,
        )
        for chunk in stream:
            assert chunk.choices[0].finish_reason is None  # none claims an end
            texts.append(chunk.choices[0].delta.content or "")
            if process is None and len(texts) >= 3:
                process = terminate(served)
    assert process is not None
    assert "shutting down" in raised.value.message or "unavailable" in raised.value.message
    assert process.wait(timeout=EXIT_TIMEOUT_S) is not None


def test_a_client_websocket_stream_cut_by_shutdown_raises_api_error(
    server: tuple[Served, str],
) -> None:
    """``TextNLPClient.stream_events``: uvicorn closes the socket with 1012 (service restart);
    the client raised websockets' own ``ConnectionClosedError``, not an ``ApiError``."""
    served, key = server
    events: list[dict[str, object]] = []
    process = None
    with (
        TextNLPClient(served.url, api_key=key) as client,
        pytest.raises(ApiUnreachable, match="1012") as raised,
    ):
        for event in client.stream_events(prompt=ESSAY, max_tokens=400, temperature=0):
            events.append(event)
            if process is None:
                process = terminate(served)  # the first token has come
    assert process is not None and raised.value.status == 503
    assert all(event["type"] == "token" for event in events)  # none claims an end
    assert process.wait(timeout=EXIT_TIMEOUT_S) is not None


def test_an_async_client_websocket_stream_cut_by_shutdown_raises_api_error(
    server: tuple[Served, str],
) -> None:
    served, key = server

    async def streamed() -> subprocess.Popen[bytes] | None:
        process = None
        async with AsyncTextNLPClient(served.url, api_key=key) as client:
            async for event in client.stream_events(prompt=ESSAY, max_tokens=400):
                assert event["type"] == "token"  # none claims an end
                if process is None:
                    process = terminate(served)
        return process

    with pytest.raises(ApiUnreachable, match="1012") as raised:
        asyncio.run(streamed())
    assert raised.value.type == "connection_error"
    assert served.process is not None
    assert served.process.wait(timeout=EXIT_TIMEOUT_S) is not None
