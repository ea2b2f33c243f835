"""The Python clients' WebSocket stream (``stream_events``) keeps the client's read timeout, as
its Server-Sent Events stream does: a server that goes silent mid-answer is ``ApiUnreachable``
once the timeout passes. The socket's receive had no timeout, so ``timeout=1`` waited as long
as the server held the connection (forever, for a hung one), and then took the cut answer for
a whole one. The other side is a real WebSocket server that sends one token and goes silent."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from websockets.sync.server import ServerConnection, serve

from textnlp.client import ApiUnreachable, AsyncTextNLPClient, TextNLPClient

#: The silent server closes the connection after this long at most (the old client waited
#: that long, then returned as if the answer were whole).
SILENT_S = 20


@pytest.fixture
def silent_server() -> Iterator[str]:
    released = threading.Event()

    def handler(socket: ServerConnection) -> None:
        socket.recv()
        socket.send(json.dumps({"type": "token", "text": "Once"}))
        released.wait(SILENT_S)

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.socket.getsockname()[:2]
        yield f"http://{host}:{port}"
        released.set()
        server.shutdown()
    thread.join()


def test_the_sync_stream_times_out_on_a_silent_server(silent_server: str) -> None:
    events: list[dict[str, object]] = []
    with (
        TextNLPClient(silent_server, api_key="key", timeout=1) as client,
        pytest.raises(ApiUnreachable, match="no message within the read timeout"),
    ):
        events.extend(client.stream_events(prompt="Tell a story", max_tokens=64))
    assert events == [{"type": "token", "text": "Once"}]  # the token came, then the error


def test_the_async_stream_times_out_on_a_silent_server(silent_server: str) -> None:
    async def streamed() -> list[dict[str, object]]:
        async with AsyncTextNLPClient(silent_server, api_key="key", timeout=1) as client:
            return [e async for e in client.stream_events(prompt="Tell a story", max_tokens=64)]

    with pytest.raises(ApiUnreachable, match="no message within the read timeout") as raised:
        asyncio.run(streamed())
    assert raised.value.status == 503
