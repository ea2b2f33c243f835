"""The web console under ``/console``: server-rendered pages over the same services as the API.

Private to the logged-in user (``session``: a cookie over a refresh-token family), CSRF-checked
forms (``csrf``) whose fields are valid text (``form_text``), a Content-Security-Policy without
inline scripts (``headers``), pages rendered by Jinja2 with autoescaping (``render``), errors
drawn by ``errors`` (called from ``textnlp.api.errors``). The front end is vendored (htmx,
under ``static/vendor``) plus the console's own ``static/console.js``: no Node.js, no build,
nothing fetched at run time.

Pages (``pages/``): auth (login, logout), playground, catalog (templates and recipes), jobs
(list, live progress, submit, cancel, download), datasets (a job's records and its validation
report), keys (API keys), admin (health, models, cache, users).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from textnlp.api.console.form_text import check_form_text
from textnlp.api.console.headers import ConsoleHeadersMiddleware
from textnlp.api.console.pages import admin, auth, catalog, datasets, jobs, keys, playground
from textnlp.api.console.render import STATIC
from textnlp.api.console.session import CONSOLE_PATH

#: The page routers, in matching order (the security suite walks their routes).
PAGE_ROUTERS = (
    auth.router,
    keys.router,
    jobs.router,
    datasets.router,
    playground.router,
    catalog.router,
    admin.router,
)


def install_console(app: FastAPI) -> None:
    """Add the console's pages, its static files and its headers to ``app``."""
    for router in PAGE_ROUTERS:
        app.include_router(
            router,
            prefix=CONSOLE_PATH,
            include_in_schema=False,
            dependencies=[Depends(check_form_text)],
        )
    app.mount(f"{CONSOLE_PATH}/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_middleware(ConsoleHeadersMiddleware)
