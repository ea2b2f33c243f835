"""Closing a connection whose client may still be sending, as nginx's ``lingering_close`` does.

A server that answers before it has read the whole request (413 for a body over the limit, 408
for a head or body that stalls, 400 for a malformed head) and then closes at once leaves unread
bytes in its socket, or gets more after the close: the kernel answers them with a reset instead
of the end of the stream, and a client that is still sending, or reading, sees "connection reset"
where the answer was. Here such a close sends the end of the stream after the answer, then reads
and drops what the client still sends until it closes its side, for at most ``LINGER_S``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

#: The longest a closing connection reads and drops a client's bytes (nginx: 30 s in all, 5 s
#: between reads); a client reads a small error answer within it.
LINGER_S = 5.0


class LingeringTransport:
    """The connection's transport, but ``close`` lingers while ``mid_request()`` says the client
    may still be sending. The protocol drops what arrives while ``lingering``."""

    def __init__(self, transport: asyncio.Transport, mid_request: Callable[[], bool]) -> None:
        self._transport = transport
        self._mid_request = mid_request
        self._timer: asyncio.TimerHandle | None = None
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.is_closing():
            return
        if not (self._mid_request() and self._transport.can_write_eof()):
            self._transport.close()
            return
        try:
            self._transport.write_eof()  # after what is buffered: the answer, then the end
        except OSError:  # the client has gone already (ENOTCONN): nothing to linger for
            self._transport.close()
            return
        self.lingering = True
        self._transport.resume_reading()  # reads may have been paused for a body's backlog
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(LINGER_S, self._transport.close)

    def connection_lost(self) -> None:
        """The client closed its side (or the linger ran out): no more timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
