"""API keys: create (the key is shown once), list, revoke — ``AuthService``, as the API's
``/auth/api-keys`` routes use it.

The create form carries a token made for each rendering of the page (``form_token``): the same
form sent again (a reload of the answer, a second click) shows the key it made, not its secret
(shown once), and makes no second key.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.csrf import CsrfChecked
from textnlp.api.console.render import page
from textnlp.api.console.session import ConsoleUser
from textnlp.auth.rules import MAX_KEY_NAME
from textnlp.auth.service import AuthService
from textnlp.errors import Conflict, InvalidInput

router = APIRouter(prefix="/keys")


def _auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


#: How long a create form's token remembers the key it made.
FORM_TOKEN_TTL_S = 3600


async def _keys_page(
    request: Request,
    user: ConsoleUser,
    created: dict[str, str] | None = None,
    status: int = 200,
    again: str | None = None,
    refused: dict[str, str] | None = None,
) -> Response:
    """``again``: the name of the key an earlier sending of this form made; ``refused``: the
    name the form was sent with and why it was refused (the form shows both)."""
    keys = await run_in_threadpool(_auth(request).list_api_keys, user.user)
    context = {
        "keys": keys,
        "created": created,
        "again": again,
        "refused": refused,
        "form_token": uuid.uuid4().hex,
        "max_key_name": MAX_KEY_NAME,
    }
    return page(request, "keys.html", context, user=user, status_code=status)


def _made_by(user: ConsoleUser, form_token: str) -> str:
    return f"console-key-form:{user.id}:{form_token}"


@router.get("")
async def keys_page(request: Request, user: ConsoleUser) -> Response:
    return await _keys_page(request, user)


@router.post("")
async def create_key(
    request: Request,
    user: ConsoleUser,
    _csrf: CsrfChecked,
    name: Annotated[str, Form(min_length=1, max_length=MAX_KEY_NAME)],
    form_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    settings = request.app.state.settings
    store = request.app.state.platform.kv_cache
    if form_token:
        remembered = await run_in_threadpool(store.get, _made_by(user, form_token))
        if remembered is not None:  # sent before: its key exists, its secret was shown then
            return await _keys_page(request, user, again=remembered.decode())
    try:
        key_id, key = await run_in_threadpool(
            _auth(request).create_api_key,
            user.user,
            name,
            max_active=settings.api.max_api_keys_per_user,
        )
    except (InvalidInput, Conflict) as exc:  # the name, or the cap: the form again, as typed
        refused = {"name": name, "message": exc.message}
        return await _keys_page(request, user, refused=refused, status=exc.http_status)
    if form_token:
        made = _made_by(user, form_token)
        await run_in_threadpool(store.set, made, name.encode(), FORM_TOKEN_TTL_S)
    return await _keys_page(
        request, user, created={"id": key_id, "name": name, "key": key}, status=201
    )


@router.post("/{key_id}/revoke")
async def revoke_key(
    key_id: str, request: Request, user: ConsoleUser, _csrf: CsrfChecked
) -> Response:
    await run_in_threadpool(_auth(request).revoke_api_key, user.user, key_id)
    return await _keys_page(request, user)
