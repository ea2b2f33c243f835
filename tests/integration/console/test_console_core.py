"""The console's core on a real app: login and logout through its forms, the session cookie and
what ends it, CSRF, security headers, ``?next`` and API keys.

A ``TestClient`` plays the browser: it keeps cookies (``Path=/console``) and sends forms; it sends
neither ``Origin`` nor ``Sec-Fetch-Site`` unless a test adds them, as an old browser would.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from urllib.parse import quote

import httpx2  # the HTTP library of starlette's TestClient
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, update

from tests.integration.console.conftest import LOGIN_LIMITS
from tests.support.api import PASSWORD, Api, make_settings, start_api
from tests.support.console import LOGIN, csrf_of, log_in
from textnlp.adapters.db.users import ApiKeyRow, UserRow
from textnlp.api.console.csrf import CSRF_COOKIE, CSRF_FIELD
from textnlp.api.console.headers import CONTENT_SECURITY_POLICY
from textnlp.api.console.session import SESSION_COOKIE


def set_cookies(answer: httpx2.Response) -> dict[str, str]:
    """name -> the ``Set-Cookie`` line of each cookie the answer sets."""
    lines = answer.headers.get_list("set-cookie")
    return {next(iter(SimpleCookie(line))): line for line in lines}


def session_of(client: TestClient) -> str:
    value = client.cookies.get(SESSION_COOKIE, path="/console")
    assert value, "logged in"
    return value


def reuse(client: TestClient, session: str) -> None:
    """The browser presents ``session`` again (an old cookie, a copied one)."""
    client.cookies.set(SESSION_COOKIE, session, domain="testserver.local", path="/console")


def assert_sent_to_login(answer: httpx2.Response, page: str = "/console/keys") -> None:
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{LOGIN}?next={quote(page, safe='/')}"


# Login and the session cookie -------------------------------------------------------------------
def test_a_page_without_a_session_goes_to_the_login_page(browser: TestClient) -> None:
    assert_sent_to_login(browser.get("/console/keys"))
    assert_sent_to_login(browser.get("/console/keys?x=1"), "/console/keys?x=1")
    page = browser.get(LOGIN)
    assert page.status_code == 200 and 'action="/console/login"' in page.text
    assert "Log out" not in page.text  # no navigation for a visitor


def test_login_sets_a_session_cookie_httponly_samesite_not_secure_locally(
    browser: TestClient,
) -> None:
    answer = log_in(browser, next="/console/keys")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/keys"
    cookie = set_cookies(answer)[SESSION_COOKIE]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Max-Age=" in cookie
    assert "Secure" not in cookie  # the local profile serves plain http on localhost
    keys = browser.get("/console/keys")
    assert keys.status_code == 200 and "alice" in keys.text and "Log out" in keys.text


def test_a_wrong_password_shows_the_form_again_without_a_session(browser: TestClient) -> None:
    answer = log_in(browser, password="not the password")
    assert answer.status_code == 401
    assert SESSION_COOKIE not in set_cookies(answer)
    assert 'role="alert"' in answer.text and 'value="alice"' in answer.text
    assert "not the password" not in answer.text
    assert_sent_to_login(browser.get("/console/keys"))


@pytest.mark.parametrize(
    "target",
    ["https://evil.example", "//evil.example/console", "/\\evil.example", "https:evil.example"],
)
def test_next_never_leaves_the_console(browser: TestClient, target: str) -> None:
    page = browser.get(LOGIN, params={"next": target})
    assert 'name="next" value="/console"' in page.text and "evil" not in page.text
    answer = log_in(browser, next=target)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"


def test_next_brings_the_user_back_to_the_page_asked_for(browser: TestClient) -> None:
    first = browser.get("/console/keys")
    page = browser.get(first.headers["location"])
    assert 'name="next" value="/console/keys"' in page.text
    assert log_in(browser, next="/console/keys").headers["location"] == "/console/keys"


# What ends a session ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("referer", "back_to"),
    [
        ("http://testserver/console/keys?x=1", "/console/keys?x=1"),
        # Behind the load balancer, which ends TLS, the app sees http; the browser sent https.
        ("https://testserver/console/keys", "/console/keys"),
        ("http://evil.example/console/keys", "/console"),
        ("http://testserver/api/v1/models/list", "/console"),
        ("http://testserver//evil.example/console", "/console"),
    ],
    ids=[
        "this-site",
        "this-site-through-tls",
        "another-site",
        "not-the-console",
        "scheme-relative",
    ],
)
def test_a_form_sent_after_the_session_ended_logs_in_back_to_its_page(
    browser: TestClient, referer: str, back_to: str
) -> None:
    # A plain POST (Cancel, Revoke) went back to the console's home, not the form's page.
    token = csrf_of(browser, LOGIN)
    answer = browser.post(
        "/console/keys/x/revoke", data={CSRF_FIELD: token}, headers={"Referer": referer}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{LOGIN}?next={quote(back_to, safe='/')}"


def test_logout_ends_the_session_even_for_a_kept_cookie(browser: TestClient) -> None:
    log_in(browser)
    old = session_of(browser)
    browser.cookies.clear()
    reuse(browser, old)
    assert browser.get("/console/keys").status_code == 200  # the cookie alone is the session
    token = csrf_of(browser, "/console/keys")
    answer = browser.post("/console/logout", data={CSRF_FIELD: token})
    assert answer.status_code == 303 and answer.headers["location"] == LOGIN
    cleared = set_cookies(answer)[SESSION_COOKIE]
    assert 'textnlp_console=""' in cleared or "Max-Age=0" in cleared
    assert_sent_to_login(browser.get("/console/keys"))
    reuse(browser, old)  # the cookie kept from before the logout
    assert_sent_to_login(browser.get("/console/keys"))


def test_the_logout_address_asks_before_it_logs_out(browser: TestClient) -> None:
    assert_sent_to_login(browser.get("/console/logout"), "/console/logout")
    log_in(browser)
    asked = browser.get("/console/logout")
    assert asked.status_code == 200 and browser.get("/console/keys").status_code == 200
    token = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', asked.text)
    assert token is not None and 'action="/console/logout"' in asked.text
    answer = browser.post("/console/logout", data={CSRF_FIELD: token.group(1)})
    assert answer.status_code == 303 and answer.headers["location"] == LOGIN
    assert_sent_to_login(browser.get("/console/keys"))


def test_an_error_page_keeps_the_navigation_of_a_logged_in_user(browser: TestClient) -> None:
    log_in(browser)
    missing = browser.get("/console/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "Error 404" in missing.text
    assert 'href="/console/jobs"' in missing.text and "Log out" in missing.text


def test_logout_needs_the_csrf_token(browser: TestClient) -> None:
    log_in(browser)
    refused = browser.post("/console/logout", data={})
    assert refused.status_code == 403
    assert browser.get("/console/keys").status_code == 200  # still logged in


def test_a_cookie_its_family_has_rotated_past_is_no_session_and_closes_the_family(
    browser: TestClient,
) -> None:
    """The console never rotates its token: one rotated by someone else (a stolen cookie
    refreshed through the API) has leaked, and presenting the old one ends every token of the
    family, as a reused refresh token does."""
    log_in(browser)
    session = session_of(browser)
    pair = browser.post("/api/v1/auth/refresh", json={"refresh_token": session})
    assert pair.status_code == 200, pair.text
    assert_sent_to_login(browser.get("/console/keys"))
    rotated = browser.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair.json()["refresh_token"]}
    )
    assert rotated.status_code == 401
    bearer = {"Authorization": f"Bearer {pair.json()['access_token']}"}
    assert browser.get("/api/v1/models/list", headers=bearer).status_code == 401


def test_a_reused_refresh_token_ends_the_console_session(browser: TestClient) -> None:
    log_in(browser)
    session = session_of(browser)
    assert browser.post("/api/v1/auth/refresh", json={"refresh_token": session}).is_success
    reused = browser.post("/api/v1/auth/refresh", json={"refresh_token": session})
    assert reused.status_code == 401  # a stolen token: the whole family is revoked
    assert_sent_to_login(browser.get("/console/keys"))


def test_disabling_the_user_ends_the_console_session(console: Api, browser: TestClient) -> None:
    auth = browser.app.state.auth  # type: ignore[attr-defined]
    auth.create_user("dave", PASSWORD)
    log_in(browser, "dave")
    assert browser.get("/console/keys").status_code == 200
    with auth.sessions.begin() as session:
        session.execute(update(UserRow).where(UserRow.username == "dave").values(active=False))
    assert_sent_to_login(browser.get("/console/keys"))
    assert log_in(browser, "dave").status_code == 401  # and cannot log in again


def test_a_forged_session_cookie_is_refused(browser: TestClient) -> None:
    reuse(browser, "not-a-token")
    assert_sent_to_login(browser.get("/console/keys"))
    api = browser.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD})
    reuse(browser, api.json()["access_token"])  # an access token is not a session
    assert_sent_to_login(browser.get("/console/keys"))


# CSRF -----------------------------------------------------------------------------------------
def key_names(client: TestClient) -> list[str]:
    page = client.get("/console/keys")
    assert page.status_code == 200
    return re.findall(r"<tr>\s*<td>([^<]*)</td>", page.text)


@pytest.mark.parametrize(
    ("field", "headers"),
    [
        (None, {}),
        ("", {}),
        ("forged-token", {}),
        ("forged-token", {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
        ("valid", {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
        ("valid", {"Sec-Fetch-Site": "same-site"}),
    ],
    ids=["no-token", "empty-token", "wrong-token", "cross-site", "cross-site-token", "same-site"],
)
def test_a_form_without_its_token_or_from_another_site_is_refused(
    browser: TestClient, field: str | None, headers: dict[str, str]
) -> None:
    log_in(browser, "bob")
    token = csrf_of(browser, "/console/keys")
    before = key_names(browser)
    form = {"name": "csrf-victim"}
    if field is not None:
        form[CSRF_FIELD] = token if field == "valid" else field
    refused = browser.post("/console/keys", data=form, headers=headers)
    assert refused.status_code == 403, refused.text
    assert "text/html" in refused.headers["content-type"]
    assert key_names(browser) == before  # nothing was created


def test_the_login_form_needs_its_token_too(browser: TestClient) -> None:
    browser.get(LOGIN)
    form = {"username": "alice", "password": PASSWORD, "next": "/console"}
    refused = browser.post(LOGIN, data=form)
    assert refused.status_code == 403 and SESSION_COOKIE not in set_cookies(refused)
    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    cross = browser.post(LOGIN, data={**form, CSRF_FIELD: csrf_of(browser)}, headers=cross_site)
    assert cross.status_code == 403 and SESSION_COOKIE not in set_cookies(cross)


def test_htmx_requests_send_the_token_as_a_header(browser: TestClient) -> None:
    log_in(browser, "bob")
    page = browser.get("/console/keys")
    token = browser.cookies.get(CSRF_COOKIE)
    assert f"&#34;X-CSRF-Token&#34;: &#34;{token}&#34;" in page.text  # <body hx-headers>
    headers = {"X-CSRF-Token": token, "HX-Request": "true"}
    made = browser.post("/console/keys", data={"name": "from-htmx"}, headers=headers)
    assert made.status_code == 201 and "from-htmx" in made.text


def test_an_htmx_call_without_a_session_logs_in_back_to_the_page_and_its_query(
    browser: TestClient,
) -> None:
    # The records page's filters were lost: only the path went into ``next``.
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver.local/console/keys?x=1"}
    answer = browser.get("/console/jobs/rows", headers=headers)
    assert answer.headers["hx-redirect"] == f"{LOGIN}?next={quote('/console/keys?x=1', safe='/')}"


# Headers -------------------------------------------------------------------------------------
def assert_security_headers(answer: httpx2.Response) -> None:
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_pages_errors_and_static_files_carry_the_security_headers(browser: TestClient) -> None:
    login = browser.get(LOGIN)
    assert_security_headers(login)
    assert login.headers["cache-control"] == "no-store"
    log_in(browser)
    for path, status in [("/console/keys", 200), ("/console/no-such-page", 404)]:
        answer = browser.get(path)
        assert answer.status_code == status
        assert "text/html" in answer.headers["content-type"]
        assert_security_headers(answer)
        assert answer.headers["cache-control"] == "no-store"
    for path in ["/console/static/console.css", "/console/static/console.js"]:
        static = browser.get(path)
        assert static.status_code == 200
        assert_security_headers(static)
    refused = browser.post("/console/keys", data={"name": "x"})  # an error page: 403
    assert refused.status_code == 403
    assert_security_headers(refused)
    assert "content-security-policy" not in browser.get("/api/v1/admin/health").headers


def test_an_error_page_escapes_what_the_user_sent(browser: TestClient) -> None:
    log_in(browser)
    hostile = "<img src=x onerror=alert(1)>"
    answer = browser.post(
        f"/console/keys/{hostile}/revoke", data={CSRF_FIELD: csrf_of(browser, "/console/keys")}
    )
    assert answer.status_code == 404  # "no API key '<img ...>'", escaped
    assert hostile not in answer.text and "&lt;img src=x onerror=alert(1)&gt;" in answer.text


# API keys ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["   ", "evil\u202eexe.txt"])
def test_a_refused_key_name_shows_the_form_again_with_what_was_typed(
    browser: TestClient, name: str
) -> None:
    # It was a bare "Error 422" page, the form gone.
    log_in(browser)
    token = csrf_of(browser, "/console/keys")
    refused = browser.post("/console/keys", data={CSRF_FIELD: token, "name": name})
    assert refused.status_code == 422
    assert "No key was created: a key&#39;s name is" in refused.text
    assert 'id="key-name"' in refused.text and f'value="{name}"' in refused.text
    assert 'id="new-key"' not in refused.text


def test_keys_are_created_shown_once_listed_and_revoked(browser: TestClient) -> None:
    log_in(browser)
    token = csrf_of(browser, "/console/keys")
    created = browser.post("/console/keys", data={CSRF_FIELD: token, "name": "laptop <b>x</b>"})
    assert created.status_code == 201
    key = re.search(r'id="new-key"[^>]*>(tnlp_[^<]+)<', created.text)
    assert key is not None, created.text
    assert "laptop &lt;b&gt;x&lt;/b&gt;" in created.text and "<b>x</b>" not in created.text
    bearer = {"Authorization": f"Bearer {key[1]}"}
    assert browser.get("/api/v1/models/list", headers=bearer).status_code == 200
    listing = browser.get("/console/keys")
    assert key[1] not in listing.text  # shown once
    assert "laptop &lt;b&gt;x&lt;/b&gt;" in listing.text
    key_id = re.search(r'action="/console/keys/([^"/]+)/revoke"', listing.text)
    assert key_id is not None and key[1].startswith(f"tnlp_{key_id[1]}")
    revoked = browser.post(f"/console/keys/{key_id[1]}/revoke", data={CSRF_FIELD: token})
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert f"/console/keys/{key_id[1]}/revoke" not in revoked.text
    assert browser.get("/api/v1/models/list", headers=bearer).status_code == 401


def test_a_key_form_sent_again_makes_no_second_key(browser: TestClient) -> None:
    # A reload of the answer (or a second click) sends the same form again.
    log_in(browser, "bob")
    page = browser.get("/console/keys")
    form = {
        CSRF_FIELD: csrf_of(browser, "/console/keys"),
        "form_token": re.findall(r'name="form_token" value="([0-9a-f]+)"', page.text)[0],
        "name": "reloaded",
    }
    first = browser.post("/console/keys", data=form)
    assert first.status_code == 201 and 'id="new-key"' in first.text
    again = browser.post("/console/keys", data=form)
    assert again.status_code == 200 and 'id="new-key"' not in again.text
    assert "already sent" in again.text
    assert key_names(browser).count("reloaded") == 1


@pytest.mark.parametrize(
    ("form", "field"),
    [({"name": "lap\x00top"}, "name"), ({"name": "ok", "extra\x00": "x"}, "extra\\x00")],
    ids=["nul-in-a-value", "nul-in-a-field-name"],
)
def test_a_form_field_that_is_not_text_is_refused_naming_it(
    browser: TestClient, form: dict[str, str], field: str
) -> None:
    log_in(browser, "bob")
    token = csrf_of(browser, "/console/keys")
    before = key_names(browser)
    refused = browser.post("/console/keys", data={CSRF_FIELD: token, **form})
    assert refused.status_code == 422, refused.text
    assert f"{field}: text holds a NUL character" in refused.text
    assert key_names(browser) == before  # nothing was created (SQLite would have kept it)


def test_another_users_key_cannot_be_revoked(console: Api, browser: TestClient) -> None:
    made = console.client.post(
        "/api/v1/auth/api-keys", json={"name": "alices"}, headers=console.headers("alice")
    )
    assert made.status_code == 201, made.text
    alices = made.json()
    log_in(browser, "bob")
    token = csrf_of(browser, "/console/keys")
    refused = browser.post(f"/console/keys/{alices['id']}/revoke", data={CSRF_FIELD: token})
    assert refused.status_code == 404
    bearer = {"Authorization": f"Bearer {alices['key']}"}
    assert browser.get("/api/v1/models/list", headers=bearer).status_code == 200
    assert "alices" not in browser.get("/console/keys").text


# Outside the local profile ---------------------------------------------------------------------
def test_a_key_past_the_cap_shows_the_form_again_with_why(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The cap's Conflict was a bare "Error 409" page, the form gone.
    home = tmp_path_factory.mktemp("console-key-cap")
    for api in start_api(make_settings(home, api={**LOGIN_LIMITS, "max_api_keys_per_user": 1})):
        browser = api.client
        browser.follow_redirects = False
        log_in(browser)
        token = csrf_of(browser, "/console/keys")
        first = browser.post("/console/keys", data={CSRF_FIELD: token, "name": "first"})
        assert first.status_code == 201, first.text
        refused = browser.post("/console/keys", data={CSRF_FIELD: token, "name": "second"})
        assert refused.status_code == 409
        assert "No key was created:" in refused.text and "revoke one first" in refused.text
        assert 'id="key-name"' in refused.text and 'value="second"' in refused.text
        assert 'id="new-key"' not in refused.text


def test_the_key_forms_bound_is_the_stored_names_width(aws_console: TestClient) -> None:
    # The form took 100 characters where the column holds 64: a name of 65 to 100 was a
    # database error ("value too long for type character varying(64)").
    column = ApiKeyRow.__table__.c.name.type
    assert isinstance(column, String) and column.length is not None
    width = column.length
    log_in(aws_console, "alice")
    try:
        page = aws_console.get("/console/keys")
        assert f'id="key-name" name="name" required maxlength="{width}"' in page.text
        token = csrf_of(aws_console, "/console/keys")
        longest = aws_console.post("/console/keys", data={CSRF_FIELD: token, "name": "k" * width})
        assert longest.status_code == 201, longest.text
        refused = aws_console.post(
            "/console/keys", data={CSRF_FIELD: token, "name": "k" * (width + 1)}
        )
        assert refused.status_code == 422, refused.text
        assert "too long" not in refused.text and f"at most {width} characters" in refused.text
    finally:
        aws_console.cookies.clear()  # the module's next test is a fresh browser


def test_cookies_are_secure_outside_the_local_profile(aws_console: TestClient) -> None:
    login = aws_console.get(LOGIN)
    assert login.status_code == 200, login.text
    assert "Secure" in set_cookies(login)[CSRF_COOKIE]
    token = aws_console.cookies.get(CSRF_COOKIE)
    form = {CSRF_FIELD: token, "username": "alice", "password": PASSWORD, "next": "/console/keys"}
    answer = aws_console.post(LOGIN, data=form)
    assert answer.status_code == 303, answer.text
    cookie = set_cookies(answer)[SESSION_COOKIE]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert aws_console.get("/console/keys").status_code == 200


def test_too_many_logins_show_the_form_and_when_to_retry(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The API answers 429 with Retry-After; the console's page had neither it nor a form.
    limits = {"login_limit_per_username": (0.01, 2), "login_limit_per_address": None}
    home = tmp_path_factory.mktemp("console-limits")
    for api in start_api(make_settings(home, api=limits)):
        browser = api.client
        browser.follow_redirects = False
        answers = [log_in(browser, "alice", "wrong password") for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]
        refused = answers[2]
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many login attempts" in refused.text
        assert 'name="password"' in refused.text and 'value="alice"' in refused.text
