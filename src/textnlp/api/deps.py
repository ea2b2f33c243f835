"""Dependency aliases of the routers: ``CurrentUser``, ``AdminUser``...

Credentials: ``Authorization: Bearer <access token or API key>`` or ``X-API-Key: <key>``.
Every authenticated request takes one token from the caller's bucket: one per user, which the
user's API keys share (more keys are not more requests). A login attempt takes one from the
bucket of the username and one from that of the client's address (``client_address_of``: what
the edge says it is where the request proves it came through the edge, ``api.viewer_verify``;
else the peer, or what the trusted proxies of ``api.trusted_proxies`` say it is).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from textnlp.adapters.buckets import Lane, TokenBuckets
from textnlp.auth.client_address import (
    client_address,
    limit_key,
    trusted_networks,
    viewer_address,
)
from textnlp.auth.service import AuthService, Principal
from textnlp.config import Settings
from textnlp.deployment import VIEWER_ADDRESS_HEADER, VIEWER_VERIFY_HEADER
from textnlp.errors import AuthError, PermissionDenied, QuotaExceeded, TextNLPError
from textnlp.observability.metrics import Metrics
from textnlp.services.generation import GenerationService

log = logging.getLogger("textnlp.api")
_bearer = HTTPBearer(auto_error=False, description="An access token or an API key.")
_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API key. Behind API Gateway (the deployment) send it as "
    "`Authorization: Bearer <key>`: the gateway's authorizer reads that header only.",
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


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
AuthDep = Annotated[AuthService, Depends(get_auth)]
GenerationDep = Annotated[GenerationService, Depends(get_generation)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def enforce_rate_limit(
    app_state: Any,
    bucket: str,
    username: str | None = None,
    limit: tuple[float, int] | None = None,
) -> None:
    """Take a token from ``bucket``: at ``limit`` (rate per second, burst) when given, else the
    user's own limit or the default one. ``QuotaExceeded`` (429) when it is empty."""
    settings: Settings = app_state.settings
    buckets: TokenBuckets = app_state.limiter
    rate, burst = limit or (settings.api.rate_limit_per_s, settings.api.rate_limit_burst)
    if limit is None and username is not None and username in settings.api.user_rate_limits:
        rate, burst = settings.api.user_rate_limits[username]
    wait = buckets.take(bucket, (Lane(rate, burst),))
    if wait > 0:
        app_state.metrics.rate_limited.inc()
        raise QuotaExceeded(
            "rate limit exceeded; retry later", retry_after=wait, limit_per_s=rate, burst=burst
        )


def client_address_of(connection: HTTPConnection) -> str:
    """The client's address: the edge's ``X-Viewer-Address`` on a request that carries the
    edge's secret, else the peer, believing ``X-Forwarded-For`` only as far as trusted proxies."""
    settings: Settings = connection.app.state.settings
    secret = settings.api.viewer_verify.get_secret_value()
    if secret:
        headers = connection.headers
        viewer = viewer_address(
            headers.getlist(VIEWER_VERIFY_HEADER), headers.getlist(VIEWER_ADDRESS_HEADER), secret
        )
        if viewer is not None:
            return viewer
    peer = connection.client.host if connection.client else None
    trusted = trusted_networks(tuple(settings.api.trusted_proxies))
    return client_address(peer, connection.headers.getlist("x-forwarded-for"), trusted)


#: How long an address a user logged in from keeps a login bucket of its own (seconds).
KNOWN_LOGIN_CLIENT_S = 30 * 24 * 3600


def _known_client_key(username: str, address: str) -> str:
    return f"login-known:{username.casefold()}:{address}"


def _known_client(connection: HTTPConnection, username: str, address: str) -> bool:
    try:
        store = connection.app.state.platform.kv_cache
        return store.get(_known_client_key(username, address)) is not None
    except TextNLPError:  # the store is away: the username's shared bucket, as before
        return False


def enforce_login_limits(connection: HTTPConnection, username: str) -> None:
    """One attempt from this address, and one at this username (whoever sends it).

    An address the user has logged in from (``remember_login_client``) takes from a bucket of
    the username at that address instead of the username's shared one: guesses at someone's
    name from elsewhere, which empty the shared bucket, no longer keep them out of their own
    account (ten wrong passwords, then one every ten seconds, from anyone, did)."""
    state = connection.app.state
    api = state.settings.api
    address = limit_key(client_address_of(connection))
    if api.login_limit_per_address is not None:  # None: the edge limits per address
        # The address first: an address already refused does not use up the username's tokens.
        enforce_rate_limit(state, f"login-addr:{address}", limit=api.login_limit_per_address)
    bucket = f"login-user:{username.casefold()}"
    # No limit per address: the app cannot see clients' addresses (its peer is a gateway shared
    # by every client), so a user's address there is every guesser's, and no bucket of its own.
    if api.login_limit_per_address is not None and _known_client(connection, username, address):
        bucket += f":{address}"
    enforce_rate_limit(state, bucket, limit=api.login_limit_per_username)


def remember_login_client(connection: HTTPConnection, username: str) -> None:
    """After a login that succeeded: its address is one the user logs in from (where the app
    sees clients' addresses: ``enforce_login_limits``)."""
    if connection.app.state.settings.api.login_limit_per_address is None:
        return
    key = _known_client_key(username, limit_key(client_address_of(connection)))
    try:
        connection.app.state.platform.kv_cache.set(key, b"1", KNOWN_LOGIN_CLIENT_S)
    except TextNLPError:  # the login stands; only its address is not remembered
        log.warning("could not remember a login's address", exc_info=True)


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


def bearer_of(connection: HTTPConnection) -> str | None:
    """The credential of an ``Authorization: Bearer`` header, if one was sent."""
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def credential_of(connection: HTTPConnection) -> str | None:
    """The credential a request sent: ``Authorization: Bearer``, else ``X-API-Key``."""
    return bearer_of(connection) or connection.headers.get("x-api-key")


#: How often a long-lived connection's credential is checked again (seconds).
RECHECK_S = 5.0


class CredentialWatch:
    """The credential of a long-lived connection (an open WebSocket, a running stream), checked
    again when ``check`` is called and ``RECHECK_S`` have passed: a logout, a revoked key or a
    disabled user ends the connection within seconds, not at its next request. No rate-limit
    token is taken."""

    def __init__(self, still_stands: Callable[[], Awaitable[object]]) -> None:
        self._still_stands = still_stands
        self._due = time.monotonic() + RECHECK_S

    @classmethod
    def of(cls, connection: HTTPConnection, credential: str | None) -> CredentialWatch:
        auth: AuthService = connection.app.state.auth

        async def still_stands() -> object:
            if not credential:
                raise AuthError("missing credentials")
            if connection.app.state.inline_auth:
                return auth.authenticate(credential)
            return await run_in_threadpool(auth.authenticate, credential)

        return cls(still_stands)

    async def check(self) -> None:
        """``AuthError`` when the credential no longer stands (looked at when due)."""
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + RECHECK_S
        await self._still_stands()


async def current_user(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> AsyncIterator[Principal]:
    """The caller, holding one of their ``api.max_requests_per_user`` slots (429 past it) until
    the response has been sent, a stream's last event included: the server's in-flight limit is
    everyone's, and one user's slow streams must not take all of it."""
    principal = await authenticate_async(request, bearer.credentials if bearer else api_key)
    release = request.app.state.open_requests.hold(principal.bucket)
    try:
        yield principal
    finally:
        release()


def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_admin:
        raise PermissionDenied("this route is for administrators")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
