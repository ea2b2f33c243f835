"""API keys: create (the key is shown once), list, revoke — ``AuthService``, as the API's
``/auth/api-keys`` routes use it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.csrf import CsrfChecked
from textnlp.api.console.render import page
from textnlp.api.console.session import ConsoleUser
from textnlp.auth.service import AuthService

router = APIRouter(prefix="/keys")


def _auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


async def _keys_page(
    request: Request, user: ConsoleUser, created: dict[str, str] | None = None, status: int = 200
) -> Response:
    keys = await run_in_threadpool(_auth(request).list_api_keys, user.user)
    context = {"keys": keys, "created": created}
    return page(request, "keys.html", context, user=user, status_code=status)


@router.get("")
async def keys_page(request: Request, user: ConsoleUser) -> Response:
    return await _keys_page(request, user)


@router.post("")
async def create_key(
    request: Request,
    user: ConsoleUser,
    _csrf: CsrfChecked,
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> Response:
    settings = request.app.state.settings
    key_id, key = await run_in_threadpool(
        _auth(request).create_api_key,
        user.user,
        name,
        max_active=settings.api.max_api_keys_per_user,
    )
    return await _keys_page(
        request, user, created={"id": key_id, "name": name, "key": key}, status=201
    )


@router.post("/{key_id}/revoke")
async def revoke_key(
    key_id: str, request: Request, user: ConsoleUser, _csrf: CsrfChecked
) -> Response:
    await run_in_threadpool(_auth(request).revoke_api_key, user.user, key_id)
    return await _keys_page(request, user)
