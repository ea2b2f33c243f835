"""How many long-lived connections (WebSockets, the console's job event streams) and HTTP
requests in progress each user holds in this process, bounded: one client's idle connections
or slow streams must not take every connection, or every in-flight request, the server has
(``api.max_connections``, ``api.max_concurrent_requests``), the health probe's included. A
connection or request over the bound is refused before it starts (429); each API process
counts its own."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from textnlp.errors import QuotaExceeded


class OpenSockets:
    def __init__(
        self,
        per_user: int,
        what: str = "WebSockets",
        advice: str = "close one, or send several requests over one",
        state: str = "open",
    ) -> None:
        self.per_user = per_user
        self._what = what
        self._advice = advice
        self._state = state
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, owner: str) -> None:
        """One more connection of ``owner``; ``QuotaExceeded`` past the bound."""
        with self._lock:
            if self._open[owner] >= self.per_user:
                raise QuotaExceeded(
                    f"{self.per_user} {self._what} are {self._state} for you already, the most one "
                    f"user may hold: {self._advice}",
                    limit=self.per_user,
                )
            self._open[owner] += 1

    def hold(self, owner: str) -> Callable[[], None]:
        """``acquire``, and the release for wherever the connection may end (a stream's
        last event, or its response's cleanup): calling it again does nothing."""
        self.acquire(owner)
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.release(owner)

        return release

    def release(self, owner: str) -> None:
        with self._lock:
            self._open[owner] -= 1
            if self._open[owner] <= 0:
                del self._open[owner]
