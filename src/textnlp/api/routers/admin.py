"""``/api/v1/admin``: health (open to load-balancer probes), metrics and cache (admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from textnlp.api.deps import AdminUser, GenerationDep, MetricsDep, credential_of
from textnlp.api.health import HealthChecker
from textnlp.api.schemas import CacheCleared, HealthResponse, Liveness
from textnlp.observability.metrics import CONTENT_TYPE_LATEST

router = APIRouter(prefix="/admin", tags=["admin"])

_HEALTH_DOC: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthResponse, "description": "The database is down."}
}


@router.get("/health", response_model=HealthResponse, responses=_HEALTH_DOC)
async def health(request: Request) -> Response:
    """Database, cache, queue, storage and every model backend: 200 while the database is up
    (``degraded`` when another part is down), 503 when it is not. Why a part is down is told
    to administrators only."""
    checker: HealthChecker = request.app.state.health
    status, body = await checker.render(detailed=await _from_an_admin(request))
    return Response(body, status_code=status, media_type="application/json")


async def _from_an_admin(request: Request) -> bool:
    """Whether the probe carries an administrator's credential (the details are theirs: a
    server's error text, a bucket's name). Looked up without taking a rate-limit token (a
    monitor polling with an admin's key must not spend their budget); anything that keeps it
    from being read (a bad credential, a busy database) makes it an anonymous probe."""
    credential = credential_of(request)
    if not credential:
        return False
    auth = request.app.state.auth
    try:
        principal = await run_in_threadpool(auth.authenticate, credential)
    except Exception:  # noqa: BLE001 - the probe is answered all the same
        return False
    return bool(principal.is_admin)


@router.get("/health/live", response_model=Liveness)
async def live() -> Liveness:
    """The process answers (the container health check): nothing is probed. On the event
    loop, not in the thread pool that busy routes can fill (the probe would time out)."""
    return Liveness(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(user: AdminUser, registry: MetricsDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


@router.post("/cache/clear", response_model=CacheCleared)
def clear_cache(user: AdminUser, generation: GenerationDep) -> CacheCleared:
    """Empty the response cache."""
    return CacheCleared(cleared=generation.clear_cache())
