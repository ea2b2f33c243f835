"""How many WebSockets each user holds open in this process, bounded: one client's idle
sockets must not take every connection the server has (``api.max_connections``), the health
probe's included. A socket over the bound is refused at its handshake (429); each API
process counts its own."""

from __future__ import annotations

import threading
from collections import Counter

from textnlp.errors import QuotaExceeded


class OpenSockets:
    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, owner: str) -> None:
        """One more socket of ``owner``; ``QuotaExceeded`` past the bound."""
        with self._lock:
            if self._open[owner] >= self.per_user:
                raise QuotaExceeded(
                    f"{self.per_user} WebSockets are open for you already, the most one user "
                    "may hold: close one, or send several requests over one",
                    limit=self.per_user,
                )
            self._open[owner] += 1

    def release(self, owner: str) -> None:
        with self._lock:
            self._open[owner] -= 1
            if self._open[owner] <= 0:
                del self._open[owner]
