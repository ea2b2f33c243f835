"""Real Redis Clusters, started from the machine's ``redis-server`` for the session: a plain
one (three masters) and one with TLS and a password, as ElastiCache in cluster mode runs.

Without ``redis-server``/``redis-cli`` (or the ``redis`` package) the tests skip with the
reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require
from tests.support.redis_cluster import (
    RedisClusterProcesses,
    TlsFiles,
    make_tls_files,
    unavailable_reason,
)
from textnlp.adapters.redis_client import redis_client
from textnlp.config import Settings, load_settings

PASSWORD = "cluster-auth-token"


def cluster_settings(url: str, *, cluster: bool = True) -> Settings:
    return load_settings(environ={}, cache={"url": url, "cluster": cluster})


def require_cluster_tools() -> None:
    """Skip (fail in CI) where no cluster can be started; for tests that start their own."""
    reason = unavailable_reason()
    require(reason is None, f"cannot start a Redis Cluster: {reason}")
    require(importlib.util.find_spec("redis") is not None, "the redis package is not installed")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    require_cluster_tools()
    with RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("redis-tls"))


@pytest.fixture(scope="session")
def tls_redis_cluster(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[RedisClusterProcesses]:
    require_cluster_tools()
    workdir = tmp_path_factory.mktemp("redis-cluster-tls")
    with RedisClusterProcesses(workdir, password=PASSWORD, tls=tls_files) as cluster:
        yield cluster


@pytest.fixture
def cluster_client(redis_cluster: RedisClusterProcesses) -> Iterator[Any]:
    """The app's own client of the plain cluster (``redis_client`` with ``cache.cluster``)."""
    client = redis_client(cluster_settings(redis_cluster.url))
    yield client
    client.close()


@pytest.fixture
def prefix() -> str:
    return f"textnlp-test:{uuid.uuid4().hex[:8]}:"
