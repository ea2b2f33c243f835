"""The lingering close on real sockets: a client that reset its connection before the server
closed it makes the close a plain one, not an ``OSError`` that turned a 413 into a logged 500."""

from __future__ import annotations

import asyncio
import socket
import struct

from textnlp.api.lingering_close import LingeringTransport


class _Held(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[asyncio.Transport]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the server has not yet seen the reset when it closes
        self.made.set_result(transport)


async def _close_after_reset() -> tuple[bool, bool]:
    loop = asyncio.get_running_loop()
    made: asyncio.Future[asyncio.Transport] = loop.create_future()
    server = await loop.create_server(lambda: _Held(made), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    transport = await made
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset: the server's socket is no longer connected
    await asyncio.sleep(0.1)
    lingering = LingeringTransport(transport, mid_request=lambda: True)
    lingering.close()  # raised OSError(ENOTCONN) from write_eof
    closing = transport.is_closing()
    server.close()
    await server.wait_closed()
    return lingering.lingering, closing


def test_a_close_after_the_client_reset_is_a_plain_close() -> None:
    lingering, closed = asyncio.run(_close_after_reset())
    assert closed and not lingering
