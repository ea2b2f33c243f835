"""The console's cookie session: who is logged in, and the cookies that say so.

A console login is an ordinary login (``AuthService.login``): it starts a refresh-token family.
The session cookie holds that family's refresh token (``HttpOnly``, ``SameSite=Lax``, ``Secure``
outside the local profile, path ``/console``); every page checks it against the session store
(``AuthService.console_session``), so logging out, revoking the family (a reused refresh token,
an operator) or disabling the user ends the console session at its next request. The token is
never rotated by the console: pages, their live updates and htmx requests arrive in parallel,
and a rotation race would read as a stolen token and revoke the family.

``ConsoleUser`` is the pages' dependency; a request without a live session raises
``LoginRequired``, which ``textnlp.api.errors`` renders as a redirect to the login page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from textnlp.api.deps import CredentialWatch, enforce_rate_limit
from textnlp.auth.service import AuthService, Principal
from textnlp.auth.tokens import TokenPair
from textnlp.errors import AuthError, PermissionDenied

CONSOLE_PATH = "/console"
SESSION_COOKIE = "textnlp_console"


class LoginRequired(AuthError):
    """No live console session: the login page, then back to ``next``."""


def safe_next(target: str) -> str:
    """``target`` when it is a console page of this site, else the console's home (no open
    redirect through ``?next=``)."""
    console = target == CONSOLE_PATH or target.startswith(CONSOLE_PATH + "/")
    if not console or "\\" in target or "//" in target or any(ord(c) < 32 for c in target):
        return CONSOLE_PATH
    # "/console/../api/..." (or %2e%2e) leaves the console once the browser resolves it.
    path = unquote(target.partition("?")[0].partition("#")[0])
    if any(segment in (".", "..") for segment in path.split("/")):
        return CONSOLE_PATH
    return target


def is_secure(connection: HTTPConnection) -> bool:
    """Cookies are ``Secure`` everywhere but the local profile (plain http on localhost)."""
    return bool(connection.app.state.settings.profile != "local")


def set_session(response: Response, connection: HTTPConnection, pair: TokenPair) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        pair.refresh_token,
        max_age=max(1, pair.refresh_claims.exp - pair.refresh_claims.iat),
        path=CONSOLE_PATH,
        secure=is_secure(connection),
        httponly=True,
        samesite="lax",
    )


def clear_session(response: Response, connection: HTTPConnection) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=CONSOLE_PATH,
        secure=is_secure(connection),
        httponly=True,
        samesite="lax",
    )


def _session_principal(connection: HTTPConnection) -> Principal:
    token = connection.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired("log in to use the console")
    state = connection.app.state
    auth: AuthService = state.auth
    try:
        principal = auth.console_session(token)
    except AuthError as exc:
        raise LoginRequired(f"your session has ended ({exc.message}); log in again") from None
    # A page is a request like any other: it takes a token from the user's bucket.
    enforce_rate_limit(state, principal.bucket, principal.username)
    return principal


async def console_principal(connection: HTTPConnection) -> Principal:
    """The logged-in user of this request (off the event loop when the store is remote)."""
    if connection.app.state.inline_auth:
        return _session_principal(connection)
    return await run_in_threadpool(_session_principal, connection)


def session_watch(connection: HTTPConnection) -> CredentialWatch:
    """The session of a long-lived answer (a stream), checked again as the API's streams
    check their credential: a logout or a disabled user ends it within seconds."""
    auth: AuthService = connection.app.state.auth
    token = connection.cookies.get(SESSION_COOKIE, "")

    async def still_stands() -> object:
        if connection.app.state.inline_auth:
            return auth.console_session(token)
        return await run_in_threadpool(auth.console_session, token)

    return CredentialWatch(still_stands)


async def console_user(request: Request) -> AsyncIterator[Principal]:
    """The session's user, holding one of their requests in progress until the page or stream
    has been sent (``api.deps.current_user``: the same bound, the same count)."""
    principal = await console_principal(request)
    request.state.console_user = principal  # an error page drawn later keeps the navigation
    release = request.app.state.open_requests.hold(principal.bucket)
    try:
        yield principal
    finally:
        release()


async def console_admin(user: Annotated[Principal, Depends(console_user)]) -> Principal:
    if not user.is_admin:
        raise PermissionDenied("this page is for administrators")
    return user


ConsoleUser = Annotated[Principal, Depends(console_user)]
ConsoleAdmin = Annotated[Principal, Depends(console_admin)]
