"""OpenAI's ``x-ratelimit-*-requests`` headers over TextNLP's token buckets.

The limit itself is the native API's: every authenticated request takes one token from the
caller's bucket (``api.deps.enforce_rate_limit``: ``rate`` per second up to ``burst``, per user
whatever key they come with). OpenAI's headers say it in its words:

- ``x-ratelimit-limit-requests``: the bucket's ``burst`` (requests that may come at once);
- ``x-ratelimit-remaining-requests``: tokens left after this request;
- ``x-ratelimit-reset-requests``: until the bucket is full again (``"20ms"``, ``"1.5s"``,
  ``"6m0s"``).

On a 429 (``api.errors``) they are exact: remaining 0, reset when the bucket admits again.
On a success the bucket (in process, or a Lua script in Redis) answers only whether it
admitted, so ``remaining`` and ``reset`` come from ``RequestWindow``, this process's replay of
the same bucket over the /v1 requests it served: exact for one process serving /v1 alone, an
upper bound where other tasks or the native routes draw from the same bucket. Clients use
these headers to pace themselves; the bucket, not the headers, is what refuses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from textnlp.config import Settings


def limit_of(settings: Settings, username: str) -> tuple[float, int]:
    """(rate per second, burst) of ``username``'s bucket, as ``enforce_rate_limit`` takes."""
    api = settings.api
    if username in api.user_rate_limits:
        rate, burst = api.user_rate_limits[username]
        return float(rate), int(burst)
    return api.rate_limit_per_s, api.rate_limit_burst


def duration(seconds: float) -> str:
    """OpenAI's duration format: ``"20ms"``, ``"1.5s"``, ``"6m0s"``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest):d}s"


def headers(burst: int, remaining: float, reset_s: float) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(burst),
        "x-ratelimit-remaining-requests": str(max(0, math.floor(remaining))),
        "x-ratelimit-reset-requests": duration(max(0.0, reset_s)),
    }


def refused_headers(details: dict[str, object], retry_after: float) -> dict[str, str]:
    """The headers of a 429 from a bucket (``QuotaExceeded`` with ``burst``), or none."""
    burst = details.get("burst")
    if not isinstance(burst, int):
        return {}
    return headers(burst, 0, retry_after)


class RequestWindow:
    """The levels of the buckets of recent /v1 callers (see the module's docstring); bounded
    to ``max_buckets``, least recently used dropped first (a dropped one reads as full)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_buckets: int = 10_000
    ) -> None:
        self._clock = clock
        self._max = max_buckets
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def admitted(self, bucket: str, rate: float, burst: int) -> dict[str, str]:
        """One admitted request of ``bucket``: the headers to answer it with."""
        now = self._clock()
        with self._lock:
            level, at = self._levels.pop(bucket, (float(burst), now))
            level = max(0.0, min(float(burst), level + (now - at) * rate) - 1.0)
            self._levels[bucket] = (level, now)
            while len(self._levels) > self._max:
                self._levels.popitem(last=False)
        return headers(burst, level, (burst - level) / rate)
