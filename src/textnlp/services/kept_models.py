"""Loaded local engines kept between the library's calls in one process.

Each ``textnlp.generate_dataset`` call builds its platform and closes it; without this, a
notebook's every call loaded the embedded model again (a second or more each). The library's
model pools check engines out of one ``KeptModels`` instead: an engine made from the same
catalogue entry and options is loaded once, and given back, not closed, when a call ends;
one whose model file has changed since (a new model written over it) is loaded again.

Only backends that say ``shares_loaded_engine`` are kept: llama.cpp's engine runs in its own
thread and each request hands it its own event loop, so one engine serves calls made on
different loops and threads (each ``asyncio.run``); such a backend also has a blocking
``close``, which works at the interpreter's exit. At most ``max_models`` are kept; the least
recently used one is closed once no call uses it. ``close`` (``textnlp.unload_models()``, and
at the interpreter's exit) closes them all (one still in use: when its call ends); a later
call loads again. Thread-safe: one lock guards the table, and loads run under it, one at a
time (two threads asking for the same model load it once).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable

from textnlp.backends.base import Backend

#: Engines the process keeps at most (a notebook's model, and one tried beside it).
MAX_KEPT_MODELS = 2


class KeptModels:
    def __init__(self, max_models: int = MAX_KEPT_MODELS) -> None:
        self.max_models = max_models
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, Backend] = OrderedDict()
        #: What each kept engine was loaded from (its model file's identity).
        self._versions: dict[str, str] = {}
        #: Calls using each checked-out engine (by id(): a backend need not be hashable).
        self._users: dict[int, int] = {}
        #: Engines dropped from the table while a call used them: closed when it ends.
        self._dropped: set[int] = set()

    def checkout(self, key: str, make: Callable[[], Backend], version: str = "") -> Backend:
        """The loaded engine kept under ``key``, made by ``make`` and loaded first if none is
        (or the one kept was loaded from another ``version`` of its model file: a new model
        written over it); give it back with ``release``. Blocks (it may load a model): an
        async caller calls it in a worker thread."""
        with self._lock:
            backend = self._kept.get(key)
            if backend is not None and self._versions.get(key) != version:
                self._drop(self._kept.pop(key))  # stale: closed (once no call uses it)
                backend = None
            if backend is None:
                backend = make()
                asyncio.run(backend.load())  # in the caller's worker thread: no loop runs here
                self._kept[key] = backend
                self._versions[key] = version
            self._kept.move_to_end(key)
            self._users[id(backend)] = self._users.get(id(backend), 0) + 1
            self._trim()
            return backend

    def release(self, backend: Backend) -> None:
        """A call is done with ``backend`` (kept for the next, or closed if it was dropped)."""
        with self._lock:
            users = self._users.get(id(backend), 0) - 1
            if users > 0:
                self._users[id(backend)] = users
                return
            self._users.pop(id(backend), None)
            if id(backend) in self._dropped:
                self._dropped.discard(id(backend))
                _close(backend)
            else:
                self._trim()

    def close(self) -> None:
        """Close every kept engine (one in use: when its call ends)."""
        with self._lock:
            kept, self._kept = list(self._kept.values()), OrderedDict()
            self._versions.clear()
            for backend in kept:
                self._drop(backend)

    def loaded(self) -> int:
        with self._lock:
            return len(self._kept)

    def _trim(self) -> None:
        """Close the least recently used engines beyond ``max_models`` that no call uses."""
        for key in list(self._kept):
            if len(self._kept) <= self.max_models:
                return
            if not self._users.get(id(self._kept[key])):
                self._versions.pop(key, None)
                self._drop(self._kept.pop(key))

    def _drop(self, backend: Backend) -> None:
        if self._users.get(id(backend)):
            self._dropped.add(id(backend))
        else:
            _close(backend)


def _close(backend: Backend) -> None:
    """Close ``backend`` in this thread: a kept one has a blocking ``close`` (at the
    interpreter's exit no thread may be started, nor an executor given work, as ``aclose``
    does)."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()
    else:
        asyncio.run(backend.aclose())
