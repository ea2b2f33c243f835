"""Health of the components the API needs: database, cache, queue, storage, model backends.

The answer is 503 (``down``) only when the database is down: every route needs it, so a task
that cannot reach it should leave its load balancer. A database that answers but refuses the
probe's new connection because it is at its connection limit is ``busy``, not down: the serving
pool's connections still work, and taking every task out of service would make a full server an
outage. A cache, queue, storage or model that is
down (the default model's; the others are listed but count for nothing, as a missing Bedrock
credential should not mark a local install) makes the report ``degraded`` with a 200: the API
still serves what does not need it (Redis failing over must not take every task out of
service), and the report says what is down. The container health check asks ``LIVE_PATH``
instead, which probes nothing.

A remote model whose circuit is open is ``down`` with the circuit's state as its detail
(``ModelPool.describe``). Details (a server's error text, a bucket, a secret's name) are for
administrators: the route is public for load-balancer probes, and anyone else gets each
component's and model's state alone (``render(detailed=False)``). Everything is probed at
most every ``PROBE_TTL_S``, in a worker thread; the JSON answer is rendered once per new
report, not once per probe request.
"""

from __future__ import annotations

import asyncio
import os
import time

from sqlalchemy import text

from textnlp.adapters.db.base import at_connection_limit
from textnlp.api.schemas import ComponentHealth, HealthResponse
from textnlp.bootstrap import Platform

#: Probes of the database and cache are shared by the calls of this interval, so a probe storm
#: (every load-balancer target, every second) costs the database one query per interval.
PROBE_TTL_S = 1.0


class HealthChecker:
    def __init__(self, platform: Platform) -> None:
        self.settings = platform.settings
        self.database = platform.database_probe  # not the serving pool, which may be full
        self.redis = platform.redis
        self.generation = platform.generation
        self._probed: dict[str, ComponentHealth] = {}
        self._models: dict[str, ComponentHealth] = {}
        self._probed_at = 0.0
        self._report: HealthResponse | None = None
        self._rendered: tuple[int, bytes] = (503, b"")
        self._public: bytes = b""

    async def check(self) -> HealthResponse:
        now = time.monotonic()
        if not self._probed or now - self._probed_at > PROBE_TTL_S:
            self._probed, self._models = await asyncio.to_thread(self._probe)
            self._probed_at = time.monotonic()
            self._report = None
        checks, models = self._probed, self._models
        if self._report is None:
            serving = checks["database"].status != "down"
            default = models.get(self.settings.default_model)
            counted = [*checks.values(), *([default] if default else [])]
            status = "degraded" if any(c.status in {"down", "busy"} for c in counted) else "ok"
            self._report = HealthResponse(
                status=status if serving else "down", checks=checks, models=models
            )
            self._rendered = (
                200 if serving else 503,
                self._report.model_dump_json().encode(),
            )
            self._public = _without_details(self._report).model_dump_json().encode()
        return self._report

    async def render(self, *, detailed: bool = True) -> tuple[int, bytes]:
        """(HTTP status, JSON body) of the current report; without ``detailed``, the states
        alone."""
        await self.check()
        status, body = self._rendered
        return status, body if detailed else self._public

    def _probe(self) -> tuple[dict[str, ComponentHealth], dict[str, ComponentHealth]]:
        """(the dependencies' health, each model's)."""
        database = self._database()
        checks = {
            "database": database,
            "cache": self._cache(),
            "queue": self._queue(database),
            "storage": self._storage(),
        }
        return checks, self._model_health()

    def _database(self) -> ComponentHealth:
        try:
            with self.database.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "down" here, but for a full server
            if at_connection_limit(exc):
                return ComponentHealth(
                    status="busy", detail="at its connection limit: no new connection"
                )
            return ComponentHealth(status="down", detail=type(exc).__name__)
        return ComponentHealth(status="ok")

    def _queue(self, database: ComponentHealth) -> ComponentHealth:
        if self.settings.queue.backend == "local":
            # The local queue is a database table: it is up when the database is.
            return ComponentHealth(status=database.status, detail="database table")
        return ComponentHealth(status="unchecked", detail="SQS (checked by the worker)")

    def _storage(self) -> ComponentHealth:
        if self.settings.storage.backend == "s3":
            return ComponentHealth(
                status="unchecked", detail=f"s3://{self.settings.storage.bucket}"
            )
        root = self.settings.storage_root
        # Made on first use: a root not made yet is fine where its nearest folder is writable.
        probe = next((p for p in (root, *root.parents) if p.exists()), root)
        writable = probe.is_dir() and os.access(probe, os.W_OK)
        return _ok(writable, f"{probe} is not writable")

    def _cache(self) -> ComponentHealth:
        if self.redis is None:
            return ComponentHealth(status="ok", detail="local (no Redis)")
        from textnlp.adapters.redis_client import ping_every_master

        try:
            return _ok(ping_every_master(self.redis), "Redis does not answer")
        except Exception as exc:  # any connection failure means "down" to a health check
            return ComponentHealth(status="down", detail=f"Redis: {type(exc).__name__}")

    def _model_health(self) -> dict[str, ComponentHealth]:
        loaded = set(self.generation.loaded_models())
        models = {}
        for info in self.generation.models():
            detail = "loaded" if info.id in loaded and info.available else info.reason
            models[info.id] = ComponentHealth(
                status="ok" if info.available else "down", detail=detail
            )
        return models

    def invalidate(self) -> None:
        """Probe again on the next call."""
        self._probed_at = 0.0
        self._probed = {}
        self._report = None


def _without_details(report: HealthResponse) -> HealthResponse:
    def bare(parts: dict[str, ComponentHealth]) -> dict[str, ComponentHealth]:
        return {name: ComponentHealth(status=part.status) for name, part in parts.items()}

    return HealthResponse(
        status=report.status, checks=bare(report.checks), models=bare(report.models)
    )


def _ok(condition: bool, failure: str) -> ComponentHealth:
    return (
        ComponentHealth(status="ok")
        if condition
        else ComponentHealth(status="down", detail=failure)
    )
