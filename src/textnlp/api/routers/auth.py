"""``/api/v1/auth``: login, refresh (rotation), logout, and the caller's API keys.

Login attempts are limited per username and per client address (``enforce_login_limits``),
refreshes per client address. API keys are created with a logged-in user's access token only
(a key that could mint keys would outlive its own revocation), up to
``api.max_api_keys_per_user`` live ones, and they share their owner's rate-limit bucket.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from textnlp.api.deps import (
    AuthDep,
    CurrentUser,
    SettingsDep,
    client_address_of,
    enforce_login_limits,
    enforce_rate_limit,
    remember_login_client,
)
from textnlp.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyInfo,
    ApiKeyList,
    LoginRequest,
    LogoutResponse,
    RefreshRequest,
    TokenResponse,
)
from textnlp.auth.client_address import limit_key
from textnlp.auth.tokens import TokenPair
from textnlp.errors import PermissionDenied

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


def _client_bucket(request: Request) -> str:
    return f"ip:{limit_key(client_address_of(request))}"


@router.post("/login", response_model=TokenResponse)
def login(body: LoginRequest, request: Request, auth: AuthDep) -> TokenResponse:
    """Exchange a username and password for an access and a refresh token."""
    enforce_login_limits(request, body.username)
    pair = auth.login(body.username, body.password)
    remember_login_client(request, body.username)
    return _tokens(pair)


@router.post("/refresh", response_model=TokenResponse)
def refresh(body: RefreshRequest, request: Request, auth: AuthDep) -> TokenResponse:
    """Rotate a refresh token. Presenting one that was already rotated revokes its family,
    unless it was rotated a moment ago (``auth.refresh_reuse_grace_s``: a concurrent refresh
    won): that one answers 401 alone."""
    enforce_rate_limit(request.app.state, _client_bucket(request))
    return _tokens(auth.refresh(body.refresh_token))


@router.post("/logout", response_model=LogoutResponse)
def logout(user: CurrentUser, auth: AuthDep) -> LogoutResponse:
    """Revoke the access token presented and its whole refresh-token family (403 with an API
    key: the credential is good, the route is not for it; 401 would say "log in again")."""
    if user.claims is None:
        raise PermissionDenied("logout needs an access token (API keys are revoked by id)")
    auth.logout(user.claims)
    return LogoutResponse()


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_api_key(
    body: ApiKeyCreate, user: CurrentUser, auth: AuthDep, settings: SettingsDep
) -> ApiKeyCreated:
    """A new API key for the caller; the key is in this answer only (stored hashed).

    Needs an access token (403 with an API key) and fewer than ``api.max_api_keys_per_user``
    live keys (409 at the cap: revoke one first)."""
    if user.via != "token":
        raise PermissionDenied("API keys are created with a login's access token, not a key")
    key_id, key = auth.create_api_key(
        user.user, body.name, max_active=settings.api.max_api_keys_per_user
    )
    return ApiKeyCreated(id=key_id, name=body.name, key=key)


@router.get("/api-keys", response_model=ApiKeyList)
def list_api_keys(user: CurrentUser, auth: AuthDep) -> ApiKeyList:
    """The caller's API keys (never the keys themselves)."""
    return ApiKeyList(data=[ApiKeyInfo(**row) for row in auth.list_api_keys(user.user)])


@router.delete("/api-keys/{key_id}", response_model=LogoutResponse)
def revoke_api_key(key_id: str, user: CurrentUser, auth: AuthDep) -> LogoutResponse:
    """Revoke one of the caller's keys; another user's key answers 404."""
    auth.revoke_api_key(user.user, key_id)
    return LogoutResponse()
