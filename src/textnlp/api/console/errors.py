"""The console's rendering of the exception tree (called by ``textnlp.api.errors``, the one
place that maps exceptions to answers): no session -> the login page, with the page asked for
as ``next``; anything else -> an HTML error page with the error's own status and message
(an htmx request gets the message as a fragment in the page's ``#flash`` area instead). A page
whose session was read keeps its navigation."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request, Response

from textnlp.api.console.render import is_htmx, page, redirect
from textnlp.api.console.session import LoginRequired, clear_session, safe_next


def login_url(request: Request) -> str:
    """The login page, then back to the page asked for: the current page of an htmx call, the
    page a plain form was sent from (its ``Referer``, when it is this site's)."""
    if request.method == "GET" and not is_htmx(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        current = urlsplit(request.headers.get("hx-current-url") or _same_site_referer(request))
        target = current.path + (f"?{current.query}" if current.query else "")
    return f"/console/login?next={quote(safe_next(target), safe='/')}"


def _same_site_referer(request: Request) -> str:
    """The ``Referer`` when it is a page of this host, else "" (``safe_next`` then keeps the
    path to the console). The host alone: behind the load balancer, which ends TLS, the app
    sees ``http`` where the browser's Referer says ``https``; only the path is kept anyway."""
    referer = request.headers.get("referer", "")
    if urlsplit(referer).netloc != request.url.netloc:
        return ""
    return referer


def console_error(request: Request, status: int, message: str, exc: Exception | None) -> Response:
    if isinstance(exc, LoginRequired):
        response = redirect(request, login_url(request))
        clear_session(response, request)
        return response
    if is_htmx(request):
        fragment = page(
            request, "_flash.html", {"level": "error", "message": message}, status_code=status
        )
        fragment.headers["HX-Retarget"] = "#flash"
        fragment.headers["HX-Reswap"] = "innerHTML"
        return fragment
    user = getattr(request.state, "console_user", None)  # known once the session was read
    context = {"status": status, "message": message}
    return page(request, "error.html", context, user=user, status_code=status)
