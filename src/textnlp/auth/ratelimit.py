"""Token buckets per user or API key: in process (``local``) or in Redis (``aws``).

``acquire(key, rate, burst)`` takes one token from the bucket ``key`` (refilled at ``rate``
tokens per second up to ``burst``) and answers 0.0 when allowed, else the seconds to wait.
The Redis bucket is one Lua script, atomic across every API task; its keys expire when idle.
It touches one key, so it runs on a Redis Cluster as it does on one server. The client is the
process's one Redis client (``textnlp.adapters.redis_client``); its owner closes it.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Protocol


class RateLimiter(Protocol):
    def acquire(self, key: str, rate: float, burst: int) -> float: ...

    def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float, burst: int) -> float:
        now = float(self._clock())
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate

    def close(self) -> None:
        self._buckets.clear()


_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RedisRateLimiter:
    """Buckets shared by every API task through Redis (time from the Redis server)."""

    def __init__(self, client: Any, prefix: str = "textnlp:rl:") -> None:
        self._prefix = prefix
        self._script = client.register_script(_LUA)

    def acquire(self, key: str, rate: float, burst: int) -> float:
        wait = float(self._script(keys=[self._prefix + key], args=[rate, burst]))
        return 0.0 if wait <= 0 or math.isnan(wait) else wait

    def close(self) -> None:
        """Nothing to release: the client is shared and closed by its owner."""
