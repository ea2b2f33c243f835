"""Login, logout and the console's home."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.csrf import CsrfChecked
from textnlp.api.console.render import page, redirect
from textnlp.api.console.session import (
    CONSOLE_PATH,
    ConsoleUser,
    clear_session,
    safe_next,
    set_session,
)
from textnlp.api.deps import enforce_login_limits, remember_login_client
from textnlp.auth.rules import MAX_PASSWORD
from textnlp.auth.service import AuthService
from textnlp.errors import AuthError, PermissionDenied, QuotaExceeded

router = APIRouter()


@router.get("")
@router.get("/")
def home(request: Request, user: ConsoleUser) -> Response:
    return redirect(request, f"{CONSOLE_PATH}/playground")


@router.get("/login")
def login_page(request: Request, next: str = CONSOLE_PATH) -> Response:  # noqa: A002
    return page(request, "login.html", {"next": safe_next(next)})


@router.post("/login")
async def login(
    request: Request,
    _csrf: CsrfChecked,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD)],
    next: Annotated[str, Form(max_length=2048)] = CONSOLE_PATH,  # noqa: A002
) -> Response:
    auth: AuthService = request.app.state.auth
    target = safe_next(next)

    def log_in() -> object:
        enforce_login_limits(request, username)
        pair = auth.login(username, password)
        remember_login_client(request, username)
        return pair

    try:
        pair = await run_in_threadpool(log_in)
    except AuthError as exc:
        if isinstance(exc, PermissionDenied):
            raise
        context = {"next": target, "username": username, "error": exc.message}
        return page(request, "login.html", context, status_code=401)
    except QuotaExceeded as exc:  # too many attempts: the form again, saying when to retry
        wait = max(1, math.ceil(exc.retry_after or 1))
        message = f"too many login attempts: try again in {wait} s"
        context = {"next": target, "username": username, "error": message}
        refused = page(request, "login.html", context, status_code=429)
        refused.headers["Retry-After"] = str(wait)
        return refused
    response = redirect(request, target)
    set_session(response, request, pair)  # type: ignore[arg-type]
    return response


@router.get("/logout")
def logout_page(request: Request, user: ConsoleUser) -> Response:
    """A link or a typed address asks first: a logout is a form post (CSRF-checked), never a
    GET another site could make a browser send."""
    return page(request, "logout.html", user=user)


@router.post("/logout")
async def logout(request: Request, user: ConsoleUser, _csrf: CsrfChecked) -> Response:
    """End the session: its refresh-token family is revoked, so the cookie is dead anywhere."""
    auth: AuthService = request.app.state.auth
    if user.claims is not None:
        await run_in_threadpool(auth.logout, user.claims)
    response = redirect(request, f"{CONSOLE_PATH}/login")
    clear_session(response, request)
    return response
