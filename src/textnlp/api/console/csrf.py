"""CSRF protection of every console form: a double-submit token, and the request's origin.

A page sets the ``textnlp_csrf`` cookie (random, ``HttpOnly``, ``SameSite=Lax``) the first
time and writes the same value into each form (``csrf_token``) and into ``<body hx-headers>``
for htmx (``X-CSRF-Token``). A state-changing request must carry both, equal, and come from
this site (``Sec-Fetch-Site``, when the browser sends it): another site can make
a browser send the cookie but can neither read it nor forge the matching field. ``Lax``, not
``Strict``: a link followed from another site must bring the cookie along, or the page would
make a new token and every form already open in another tab would stop working.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response

from textnlp.api.console.session import CONSOLE_PATH, is_secure
from textnlp.errors import PermissionDenied

CSRF_COOKIE = "textnlp_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    """This browser's token (a new one when it has none yet; ``remember_csrf`` stores it)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


def remember_csrf(request: Request, response: Response) -> None:
    """Set the cookie of a token made for this page."""
    token = getattr(request.state, "new_csrf", None)
    if token is not None and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path=CONSOLE_PATH,
            secure=is_secure(request),
            httponly=True,
            samesite="lax",
        )


def _same_site(request: Request) -> bool:
    """What the browser says of the request's origin (``Sec-Fetch-Site``, sent by every current
    browser and not settable by a page). ``Origin`` is not compared with ``Host``: behind API
    Gateway and the load balancer the app sees the origin's host, not the one the browser used;
    the token alone already refuses another site's request."""
    fetch_site = request.headers.get("sec-fetch-site")
    return fetch_site is None or fetch_site in ("same-origin", "none")


async def check_csrf(request: Request) -> None:
    """The dependency of every state-changing console route."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise PermissionDenied("the form has expired or came from another site; reload the page")
    if not _same_site(request):
        raise PermissionDenied("cross-site request refused")


CsrfChecked = Annotated[None, Depends(check_csrf)]
