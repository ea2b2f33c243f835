"""The one Redis client of a process, built from settings: the only place that decides whether
(and which) Redis is used.

``redis_client(settings)`` answers None when there is no shared cache server
(``Settings.cache_url`` is None), a ``redis.cluster.RedisCluster`` when ``cache.cluster`` says
the server is a Redis Cluster (ElastiCache in cluster mode), else a ``redis.Redis``. The
composition root builds it once and hands the same client to the response cache and both rate
limiters; they never close it, the composition root does.

- TLS comes from the ``rediss://`` scheme, with the server's certificate verified (hostname
  included) against the system trust store, which honours ``SSL_CERT_FILE``.
- The auth token comes from the URL (``rediss://:token@host:port``).
- A cluster client follows MOVED and ASK redirections and TRYAGAIN answers itself (up to
  ``RedisCluster.RedisClusterRequestTTL`` hops per command), refreshing its slot map as it goes;
  connection errors, timeouts and CLUSTERDOWN make it reload the topology and retry the command
  (``retry`` below). A cluster client learns the slot map when it is created, so an unreachable
  cluster fails here, at start, rather than on the first request.

The ``redis`` package belongs to the ``api`` and ``aws`` extras, so it is imported on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from textnlp.errors import ConfigError

if TYPE_CHECKING:
    from textnlp.config import Settings

#: Seconds to connect, and to wait for one answer: a cache that is slower than this is down.
CONNECT_TIMEOUT_S = 3.0
SOCKET_TIMEOUT_S = 3.0
#: Retries of a command after a connection error, a timeout or CLUSTERDOWN (a failover).
RETRIES = 3
#: Seconds an idle connection may sit before it is checked with a PING on its next use, so a
#: connection to a node replaced by a failover is noticed before a command is lost on it.
HEALTH_CHECK_INTERVAL_S = 30


def redis_client(settings: Settings) -> Any | None:
    """The Redis client the settings ask for, or None: no shared cache server."""
    url = settings.cache_url
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(
            "the cache URL (TEXTNLP_CACHE__URL) must be redis://, rediss:// or unix://"
        )
    options = _connection_options(tls=parts.scheme == "rediss")
    if settings.cache.cluster:
        if parts.scheme == "unix" or parts.path.strip("/") not in {"", "0"}:
            raise ConfigError(
                "a Redis Cluster (TEXTNLP_CACHE__CLUSTER) needs a redis:// or rediss:// URL "
                "without a database number"
            )
        return _cluster_client(url, options)
    import redis

    return redis.Redis.from_url(url, **options)


def is_cluster(client: Any) -> bool:
    """True for a ``RedisCluster`` client (its commands may span several masters)."""
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def ping_every_master(client: Any) -> bool:
    """PING the server, or every master of a cluster: one that is down loses its share of the
    keys, while a plain ``ping()`` of a cluster client asks a single node. Raises what the
    client raises when a node cannot be reached."""
    if is_cluster(client):
        return bool(client.ping(target_nodes=client.PRIMARIES))
    return bool(client.ping())


def _connection_options(*, tls: bool) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }
    if tls:
        # The library's defaults too; spelt out because a cache that accepts any certificate
        # would hand the auth token to whoever answers. No CA file: the system store is used.
        options |= {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    return options


def _cluster_client(url: str, options: dict[str, Any]) -> Any:
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.cluster import RedisCluster
    from redis.retry import Retry

    return RedisCluster.from_url(
        url,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), RETRIES),
        # Keep the configured endpoint (ElastiCache's configuration endpoint, which always
        # resolves to live nodes) as the node the topology is reloaded from, rather than the
        # node addresses seen at start, which a node replacement retires.
        dynamic_startup_nodes=False,
        **options,
    )
