"""The response cache on a Redis Cluster: entries on every shard, cleared on every master."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.redis_cluster.conftest import cluster_settings, require_cluster_tools
from tests.support.redis_cluster import RedisClusterProcesses
from textnlp.adapters.cache.redis import RedisCache
from textnlp.adapters.redis_client import redis_client


def test_entries_spread_over_every_shard_and_clear_removes_them_all(
    redis_cluster: RedisClusterProcesses, cluster_client: Any, prefix: str
) -> None:
    cache = RedisCache(cluster_client, prefix)
    names = [f"entry-{i}" for i in range(60)]
    for name in names:
        cache.set(name, name.encode(), ttl_s=60)
    assert redis_cluster.masters_serving([prefix + n for n in names]) == set(redis_cluster.ports)
    assert all(cache.get(name) == name.encode() for name in names)

    assert cache.clear() == len(names)

    assert all(cache.get(name) is None for name in names)
    for port in redis_cluster.ports:  # each master directly: nothing of the prefix is left
        node = redis_cluster.node(port)
        try:
            assert list(node.scan_iter(match=prefix + "*")) == []
        finally:
            node.close()


def test_delete_removes_one_entry(cluster_client: Any, prefix: str) -> None:
    cache = RedisCache(cluster_client, prefix)
    cache.set("gone", b"1", ttl_s=60)
    cache.set("kept", b"2", ttl_s=60)
    cache.delete("gone")
    cache.delete("never-set")
    assert cache.get("gone") is None and cache.get("kept") == b"2"
    cache.clear()


def test_clear_leaves_other_prefixes_alone(cluster_client: Any, prefix: str) -> None:
    cache = RedisCache(cluster_client, prefix)
    other = RedisCache(cluster_client, prefix.replace("textnlp-test:", "textnlp-other:"))
    try:
        for i in range(10):
            cache.set(f"a{i}", b"1", ttl_s=60)
            other.set(f"b{i}", b"2", ttl_s=60)
        assert cache.clear() == 10
        assert all(other.get(f"b{i}") == b"2" for i in range(10))
    finally:
        other.clear()


def test_ping_asks_every_master(tmp_path: Path) -> None:
    require_cluster_tools()
    with RedisClusterProcesses(tmp_path / "cluster") as cluster:  # its own: a node dies here
        client = redis_client(cluster_settings(cluster.url))
        cache = RedisCache(client)
        try:
            assert cache.ping()
            cluster.kill_node(cluster.ports[-1])
            assert not cache.ping()
        finally:
            client.close()


def test_prefix_with_glob_characters_clears_only_itself(cluster_client: Any, prefix: str) -> None:
    starred = RedisCache(cluster_client, prefix + "*:")
    plain = RedisCache(cluster_client, prefix + "x:")
    try:
        starred.set("k", b"1", ttl_s=60)
        plain.set("k", b"2", ttl_s=60)
        assert starred.clear() == 1
        assert plain.get("k") == b"2"
    finally:
        plain.clear()
