"""The ``KeyValueCache`` protocol: bytes by key, with a TTL, cleared as a whole.

Only things that may be lost live here (the design's Redis evicts with allkeys-lru): response
caches, never revocations or job state.
"""

from __future__ import annotations

from typing import Protocol


class KeyValueCache(Protocol):
    #: True when ``get``/``set`` never wait on I/O, so callers may run them on the event loop.
    in_process: bool

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_s: int) -> None: ...

    def delete(self, key: str) -> None: ...

    def clear(self) -> int:
        """Remove every entry of this cache; the number removed."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...
