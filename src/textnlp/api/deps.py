"""Dependency aliases of the routers: ``SessionDep``, ``CurrentUser``, ``AdminUser``...

Credentials: ``Authorization: Bearer <access token or API key>`` or ``X-API-Key: <key>``.
Every authenticated request takes one token from the caller's bucket (per user, per API key).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from textnlp.auth.ratelimit import RateLimiter
from textnlp.auth.service import AuthService, Principal
from textnlp.config import Settings
from textnlp.errors import AuthError, PermissionDenied, QuotaExceeded
from textnlp.observability.metrics import Metrics
from textnlp.services.generation import GenerationService

_bearer = HTTPBearer(auto_error=False, description="An access token or an API key.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.db() as session:
        yield session


def get_auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


def get_generation(request: Request) -> GenerationService:
    generation: GenerationService = request.app.state.generation
    return generation


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
GenerationDep = Annotated[GenerationService, Depends(get_generation)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def enforce_rate_limit(app_state: Any, bucket: str, username: str | None = None) -> None:
    settings: Settings = app_state.settings
    limiter: RateLimiter = app_state.limiter
    rate, burst = settings.api.rate_limit_per_s, settings.api.rate_limit_burst
    if username is not None and username in settings.api.user_rate_limits:
        rate, burst = settings.api.user_rate_limits[username]
    wait = limiter.acquire(bucket, rate, burst)
    if wait > 0:
        app_state.metrics.rate_limited.inc()
        raise QuotaExceeded(
            "rate limit exceeded; retry later", retry_after=wait, limit_per_s=rate, burst=burst
        )


def authenticate(request: HTTPConnection, credential: str | None) -> Principal:
    if not credential:
        raise AuthError("missing credentials: send 'Authorization: Bearer <token>'")
    principal = request.app.state.auth.authenticate(credential)
    assert isinstance(principal, Principal)
    enforce_rate_limit(request.app.state, principal.bucket, principal.username)
    return principal


async def authenticate_async(connection: HTTPConnection, credential: str | None) -> Principal:
    """``authenticate`` without blocking the event loop on a network database or Redis."""
    if connection.app.state.inline_auth:
        # An SQLite lookup and an in-memory bucket take ~0.1 ms: cheaper than a thread hop.
        return authenticate(connection, credential)
    return await run_in_threadpool(authenticate, connection, credential)


async def current_user(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    return await authenticate_async(request, bearer.credentials if bearer else api_key)


def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_admin:
        raise PermissionDenied("this route is for administrators")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
