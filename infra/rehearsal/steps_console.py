"""Journey step 13: a person's way in, the web console, through API Gateway's public console
routes (the app checks its session cookie, CSRF token and sets its CSP).

The journey calls the stage URL (`https://<api>/<stage>/console/...`) where the deployment's
custom domain would serve `/console/...`: a browser would not send the console's cookies
(path `/console`) to the stage's path, so the step sends them itself, as a browser on the
custom domain would.

The jobs page's live events (`/console/jobs/events`, Server-Sent Events until the browser
leaves) must come through while the stream is open: a buffered integration would hold them
until API Gateway's 504 at 29 s. The step checks the route's transfer mode (no 29-second wait
to see the 504) and reads the stream's first event or keep-alive comment while it is open."""

from __future__ import annotations

import re
import time

import httpx

from rehearsal.gateway import transfer_mode
from rehearsal.journey import Session, StepFailed, expect

CSRF_COOKIE = "textnlp_csrf"
SESSION_COOKIE = "textnlp_console"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
EVENTS_PATH = "/console/jobs/events"


def _cookie(response: httpx.Response, name: str) -> tuple[str, str]:
    """(value, attributes) of the ``Set-Cookie`` called ``name``."""
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            value, _, attributes = rest.partition(";")
            return value, attributes.lower()
    raise StepFailed(f"{response.request.method} {response.request.url.path} set no {name} "
                     f"cookie (status {response.status_code})")


def console(session: Session) -> tuple[str, str]:
    client = session.gateway()
    api = session.rehearsed.rest_apis[0]
    hosts = ", ".join(session.rehearsed.balancers.aliases) or "?"
    components = f"REST API {api.id} (public /console routes) -> ALB ({hosts}) -> API task"
    page = client.get("/console/login")
    if page.status_code != 200 or "default-src 'none'" not in page.headers.get(
            "content-security-policy", ""):
        raise StepFailed(f"GET /console/login: {page.status_code}, CSP "
                         f"{page.headers.get('content-security-policy')!r}", components=components)
    csrf, _ = _cookie(page, CSRF_COOKIE)
    field = _CSRF_FIELD.search(page.text)
    if field is None or field.group(1) != csrf:
        raise StepFailed("the login form's CSRF field does not match its cookie",
                         components=components)
    form = {"username": session.username, "password": session.password,
            "csrf_token": csrf, "next": "/console/keys"}
    login = client.post("/console/login", data=form, headers={"Cookie": f"{CSRF_COOKIE}={csrf}"},
                        follow_redirects=False)
    expect(login, 303, "POST /console/login")
    if login.headers.get("location") != "/console/keys":
        raise StepFailed(f"the login redirected to {login.headers.get('location')!r}",
                         components=components)
    token, attributes = _cookie(login, SESSION_COOKIE)
    missing = [flag for flag in ("httponly", "secure", "samesite=lax", "path=/console")
               if flag not in attributes]
    if missing:
        raise StepFailed(f"the session cookie lacks {', '.join(missing)}", components=components)
    cookies = {"Cookie": f"{CSRF_COOKIE}={csrf}; {SESSION_COOKIE}={token}"}
    keys = client.get("/console/keys", headers=cookies)
    if keys.status_code != 200 or session.username not in keys.text:
        raise StepFailed(f"GET /console/keys with the session: {keys.status_code}",
                         components=components)
    events = live_events(session, cookies, components)
    logout = client.post("/console/logout", data={"csrf_token": csrf}, headers=cookies,
                         follow_redirects=False)
    if logout.status_code != 303:
        raise StepFailed(f"POST /console/logout: {logout.status_code}", components=components)
    after = client.get("/console/keys", headers=cookies, follow_redirects=False)
    if after.status_code != 303 or not after.headers.get("location", "").startswith(
            "/console/login"):
        raise StepFailed(f"the logged-out session: GET /console/keys answered "
                         f"{after.status_code}", components=components)
    return components, ("login page with its CSP, form login (303, session cookie HttpOnly, "
                        f"Secure, SameSite=Lax), the user's keys page, {events}, logout; the "
                        "old cookie is sent back to the login page")


def live_events(session: Session, cookies: dict[str, str], components: str) -> str:
    """The console's job events stream through the gateway: its first line, read while the
    stream is open (then the step leaves, as a browser closing the page does)."""
    api = session.rehearsed.rest_apis[0]
    found = api.route(EVENTS_PATH, "GET")
    mode = transfer_mode(found[2].get("Integration", {})) if found else "no route"
    if mode != "STREAM":
        raise StepFailed(f"GET {EVENTS_PATH}: the gateway's integration is {mode}: it would "
                         "hold the events until its 504 at 29 s", components=components)
    started = time.monotonic()
    with session.gateway().stream("GET", EVENTS_PATH, headers={
            **cookies, "Accept": "text/event-stream"}) as answer:
        kind = answer.headers.get("content-type", "")
        if answer.status_code != 200 or not kind.startswith("text/event-stream"):
            raise StepFailed(f"GET {EVENTS_PATH}: {answer.status_code} {kind}",
                             components=components)
        # The stream never ends by itself: a first line here came while it was open.
        first = next((line for line in answer.iter_lines()
                      if line.startswith(("event:", "data:", ":"))), None)
    if first is None:
        raise StepFailed(f"GET {EVENTS_PATH}: the stream ended without an event or comment",
                         components=components)
    what = "a progress event" if first.startswith(("event:", "data:")) else "a keep-alive"
    return (f"its live job events streamed through the gateway ({what} after "
            f"{time.monotonic() - started:.1f} s)")
