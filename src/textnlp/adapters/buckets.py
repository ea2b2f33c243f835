"""Token buckets: the platform's one rate-limiting mechanism, in process or in Redis.

Two users share it: the API's limits per user, API key and login (``textnlp.api.deps``: one
lane of ``rate`` tokens per second up to ``burst``), and the models' requests- and
tokens-per-minute limits (``textnlp.backends.ratelimit``: a lane for the request and one for
its tokens).

``take(key, lanes)`` takes each lane's ``amount`` from the bucket ``key`` when every lane holds
it and answers 0.0; otherwise it takes nothing and answers the seconds until it would be
admitted. An amount larger than a lane's burst counts as the burst (it could never be admitted
otherwise).

- ``MemoryBuckets``: a bucket that has refilled to full answers exactly as a missing one, so
  idle buckets are dropped once full (swept every ``sweep_every_s``), and beyond ``max_buckets``
  the least recently used go first: memory stays bounded whatever keys clients make up.
- ``RedisBuckets``: one Lua script over one hash per bucket (a field per lane), atomic across
  every task and timed by the Redis server; the key expires once every lane would be full
  again. One key per call, so it runs on a Redis Cluster as on one server, with no hash tag
  and no CROSSSLOT, and keeps working while its slot migrates (a script of two keys that do
  not exist yet is answered TRYAGAIN during a migration). The client is the process's one Redis
  client (``textnlp.adapters.redis_client``); its owner closes it.

When Redis cannot be reached, ``RedisBuckets`` rides the outage out on local buckets for
``outage_window_s`` (5 minutes; 0: not at all), then refuses with ``ServiceUnavailable`` (503)
until Redis is back. Why not fail closed at once: the limits are not the data, and a failover
of ElastiCache (tens of seconds) should not take every authenticated route and login down with
it; local buckets still bound each task, only N tasks together allow N times the limit. Why not
forever: autoscaling adds tasks under load, so the local limits loosen just when they matter,
and an outage longer than a failover is an incident to see (5xx, alarms), not a silent N-fold
limit.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from textnlp.errors import ServiceUnavailable

log = logging.getLogger("textnlp.limits")

#: Seconds of a Redis outage served from local buckets before limited requests answer 503.
OUTAGE_WINDOW_S = 300.0
#: While Redis is down, one request tries it again at most this often (a try may wait for the
#: client's connect timeout); the others use the local buckets meanwhile.
RETRY_S = 5.0
#: Floating point slack: a bucket refilled for exactly the computed wait admits.
EPSILON = 1e-9


@dataclass(frozen=True)
class Lane:
    """One lane of a bucket: refilled at ``rate`` per second up to ``burst``; a take costs
    ``amount``."""

    rate: float
    burst: float
    amount: float = 1.0


class TokenBuckets(Protocol):
    def take(self, key: str, lanes: Sequence[Lane]) -> float: ...

    def close(self) -> None: ...


class MemoryBuckets:
    """Buckets of one process (see the module's docstring)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_buckets: int = 100_000,
        sweep_every_s: float = 60.0,
    ) -> None:
        self._clock = clock
        self._max_buckets = max_buckets
        self._sweep_every_s = sweep_every_s
        #: key -> (lane levels, last update, when every lane is full again), least recently
        #: used first (each take moves its key to the end).
        self._buckets: dict[str, tuple[list[float], float, float]] = {}
        self._next_sweep = float(clock()) + sweep_every_s
        self._lock = threading.Lock()

    def take(self, key: str, lanes: Sequence[Lane]) -> float:
        now = float(self._clock())
        with self._lock:
            state = self._buckets.pop(key, None)
            fresh = state is None or len(state[0]) != len(lanes)
            levels, wait = [], 0.0
            for i, lane in enumerate(lanes):
                if fresh or state is None:
                    level = float(lane.burst)
                else:
                    level = min(lane.burst, state[0][i] + (now - state[1]) * lane.rate)
                levels.append(level)
                amount = min(lane.amount, lane.burst)
                if level + EPSILON < amount:  # a refill that lands on the amount admits
                    wait = max(wait, (amount - level) / lane.rate)
            full_in = 0.0
            for i, lane in enumerate(lanes):
                if wait == 0.0:  # every lane holds its amount: take them all
                    levels[i] = max(0.0, levels[i] - min(lane.amount, lane.burst))
                full_in = max(full_in, (lane.burst - levels[i]) / lane.rate)
            self._buckets[key] = (levels, now, now + full_in)
            if now >= self._next_sweep:
                self._sweep(now)
            while len(self._buckets) > self._max_buckets:
                del self._buckets[next(iter(self._buckets))]
            return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        full = [key for key, (_, _, full_at) in self._buckets.items() if full_at <= now]
        for key in full:
            del self._buckets[key]
        self._next_sweep = now + self._sweep_every_s

    def close(self) -> None:
        with self._lock:
            self._buckets.clear()


#: ARGV: rate, burst, amount of each lane in turn. Fields: ``ts`` and ``l1``, ``l2``... levels.
_TAKE = """
local key = KEYS[1]
local n = #ARGV / 3
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ts = tonumber(redis.call('HGET', key, 'ts'))
local levels = {}
local wait = 0
for i = 1, n do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local amount = math.min(tonumber(ARGV[3 * i]), burst)
  local level = tonumber(redis.call('HGET', key, 'l' .. i))
  if level == nil or ts == nil then level = burst
  else level = math.min(burst, level + (now - ts) * rate) end
  levels[i] = level
  if level + 1e-9 < amount then wait = math.max(wait, (amount - level) / rate) end
end
local full = 0
for i = 1, n do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  if wait == 0 then levels[i] = math.max(0, levels[i] - math.min(tonumber(ARGV[3 * i]), burst)) end
  redis.call('HSET', key, 'l' .. i, tostring(levels[i]))
  full = math.max(full, (burst - levels[i]) / rate)
end
redis.call('HSET', key, 'ts', tostring(now))
redis.call('EXPIRE', key, math.ceil(full) + 1)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets shared by every task through Redis; local buckets during an outage of up to
    ``outage_window_s`` (see the module's docstring)."""

    def __init__(
        self,
        client: Any,
        prefix: str = "textnlp:rl:",
        *,
        outage_window_s: float = OUTAGE_WINDOW_S,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from redis.exceptions import RedisClusterException, RedisError

        self._prefix = prefix
        self._script = client.register_script(_TAKE)
        self._outage_errors = (RedisError, RedisClusterException, OSError)
        self._outage_window_s = outage_window_s
        self._retry_s = retry_s
        self._clock = clock
        self._local = MemoryBuckets(clock)
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    def take(self, key: str, lanes: Sequence[Lane]) -> float:
        now = float(self._clock())
        if self._should_try_redis(now):
            args = [value for lane in lanes for value in (lane.rate, lane.burst, lane.amount)]
            try:
                wait = float(self._script(keys=[self._prefix + key], args=args))
            except self._outage_errors as exc:
                self._went_down(now, exc)
            else:
                self._came_back()
                return 0.0 if wait <= 0 or math.isnan(wait) else wait
        return self._take_locally(key, lanes, now)

    def _should_try_redis(self, now: float) -> bool:
        with self._lock:
            if self._down_since is None:
                return True
            if now < self._retry_at:
                return False
            self._retry_at = now + self._retry_s  # this request probes; the others wait it out
            return True

    def _went_down(self, now: float, exc: BaseException) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = now
            self._retry_at = now + self._retry_s
        if first:
            log.warning(
                "rate limits: Redis unreachable (%s); local buckets for up to %.0f s",
                type(exc).__name__,
                self._outage_window_s,
            )

    def _came_back(self) -> None:
        if self._down_since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            self._down_since = None
        log.warning("rate limits: Redis is back; shared buckets again")

    def _take_locally(self, key: str, lanes: Sequence[Lane], now: float) -> float:
        down_since = self._down_since
        if down_since is not None and now - down_since >= self._outage_window_s:
            raise ServiceUnavailable(
                "rate limits are unavailable (the cache cannot be reached); retry later",
                dependency="cache",
                retry_after=self._retry_s,
            )
        return self._local.take(key, lanes)

    def close(self) -> None:
        """The client is shared and closed by its owner; only the local buckets go."""
        self._local.close()
