"""``redis_client(settings)`` against a cluster as ElastiCache runs it: TLS in transit (the
server's certificate checked against the system trust store) and an auth token in the URL."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from tests.integration.redis_cluster.conftest import PASSWORD, cluster_settings
from tests.support.redis_cluster import RedisClusterProcesses, TlsFiles
from textnlp.adapters.cache.redis import RedisCache
from textnlp.adapters.redis_client import redis_client


def test_an_unknown_certificate_authority_is_refused(
    tls_redis_cluster: RedisClusterProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    # A cluster client reads the slot map when it is made: the handshake fails right here.
    with pytest.raises(RedisClusterException, match="CERTIFICATE_VERIFY_FAILED"):
        redis_client(cluster_settings(tls_redis_cluster.url))


def test_the_ca_in_ssl_cert_file_makes_a_working_cluster_client(
    tls_redis_cluster: RedisClusterProcesses,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))
    assert tls_redis_cluster.url.startswith(f"rediss://:{PASSWORD}@")
    client = redis_client(cluster_settings(tls_redis_cluster.url))
    try:
        assert isinstance(client, RedisCluster)
        cache = RedisCache(client, "textnlp-test:tls:")
        names = [f"entry-{i}" for i in range(30)]
        for name in names:
            cache.set(name, name.encode(), ttl_s=60)
        assert tls_redis_cluster.masters_serving(["textnlp-test:tls:" + n for n in names]) == set(
            tls_redis_cluster.ports
        )
        assert all(cache.get(name) == name.encode() for name in names)
        assert cache.ping()
        assert cache.clear() == len(names)
    finally:
        client.close()


def test_without_cluster_mode_the_factory_makes_a_plain_tls_client(
    tls_redis_cluster: RedisClusterProcesses,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))
    client = redis_client(cluster_settings(tls_redis_cluster.url, cluster=False))
    try:
        assert type(client) is redis.Redis
        assert client.ping()
    finally:
        client.close()


def test_a_wrong_auth_token_is_refused(
    tls_redis_cluster: RedisClusterProcesses,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))
    url = tls_redis_cluster.url.replace(PASSWORD, "not-the-token")
    with pytest.raises(RedisClusterException, match="invalid username-password"):
        redis_client(cluster_settings(url))


def test_the_token_and_tls_parts_of_the_settings_assemble_the_url(
    tls_redis_cluster: RedisClusterProcesses,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deployment gives host, port, token and TLS apart (``Settings.cache_url``)."""
    from textnlp.config import load_settings

    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca))
    settings = load_settings(
        environ={},
        cache={
            "host": "127.0.0.1",
            "port": tls_redis_cluster.ports[1],
            "auth_token": PASSWORD,
            "tls": True,
            "cluster": True,
        },
    )
    client = redis_client(settings)
    try:
        assert client.set("textnlp-test:parts", b"1") and client.get("textnlp-test:parts") == b"1"
        client.delete("textnlp-test:parts")
    finally:
        client.close()
