"""Rendering of console pages: one Jinja2 environment (autoescaped), one ``page`` helper.

Every page gets the logged-in ``user``, the ``csrf_token`` of its forms and the navigation;
user content (generated text, template fields, names) is escaped by the environment, never
marked safe. ``redirect`` answers a plain browser request with 303 and an htmx request with
``HX-Redirect`` (htmx would otherwise swap the target page into a fragment).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from textnlp.api.console.csrf import CSRF_FIELD, csrf_token, remember_csrf
from textnlp.auth.service import Principal
from textnlp.domain import MAX_SEED

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

#: (path, label, admin only) of the navigation bar.
NAV = (
    ("/console/playground", "Playground", False),
    ("/console/catalog", "Templates & recipes", False),
    ("/console/jobs", "Jobs", False),
    ("/console/keys", "API keys", False),
    ("/console/admin", "Admin", True),
)


@cache
def templates() -> Jinja2Templates:
    environment = Jinja2Templates(directory=TEMPLATES)
    environment.env.globals["nav"] = NAV
    environment.env.globals["csrf_field"] = CSRF_FIELD
    environment.env.globals["max_seed"] = MAX_SEED  # every seed input's max
    environment.env.filters["tojson_compact"] = lambda value: json.dumps(
        value, ensure_ascii=False, sort_keys=True, default=str
    )
    return environment


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def page(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    user: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """``templates/<name>`` with the console's context; sets the CSRF cookie when new."""
    token = csrf_token(request)
    response = templates().TemplateResponse(
        request,
        name,
        {"user": user, "csrf_token": token, "hx_headers": json.dumps({"X-CSRF-Token": token})}
        | (context or {}),
        status_code=status_code,
    )
    remember_csrf(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
