"""The cache the settings ask for: ``memory`` or a ``redis://`` URL."""

from __future__ import annotations

from textnlp.adapters.cache.base import KeyValueCache
from textnlp.adapters.cache.memory import MemoryCache
from textnlp.adapters.cache.redis import RedisCache
from textnlp.errors import ConfigError


def make_cache(url: str) -> KeyValueCache:
    if url == "memory":
        return MemoryCache()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCache.from_url(url)
    raise ConfigError(f"cache.url must be 'memory' or a redis:// URL (got {url!r})")
