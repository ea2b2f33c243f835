"""The console in chromium, as a user: log in, API keys, logout (and the back button), another
user's job, hostile markup in a user's template, the keyboard."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.console.conftest import (
    ADMIN,
    ALICE,
    BOB,
    PASSWORD,
    Browse,
    Tab,
    api_headers,
    submit_job,
)
from tests.support.serve import Served

pytestmark = pytest.mark.slow


def test_log_in_with_a_wrong_then_the_right_password(browse: Browse) -> None:
    tab = browse.page()
    tab.goto("/console/keys", status=200)  # the login page, after a redirect
    page = tab.page
    assert "/console/login?next=/console/keys" in page.url
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    assert "invalid" in page.get_by_role("alert").inner_text().lower()
    assert page.get_by_label("Username").input_value() == "alice"
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/console/keys")
    assert page.get_by_role("heading", level=1).inner_text() == "API keys"
    assert page.get_by_text("alice", exact=True).is_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["textnlp_console"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/console"
    assert page.evaluate("() => document.cookie") == ""  # no script can read either cookie
    tab.check("login-done")


def test_create_an_api_key_see_it_once_and_revoke_it(browse: Browse, server: Served) -> None:
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/keys")
    page.get_by_label("Name").fill("notebook")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("tnlp_")
    assert page.get_by_role("alert").filter(has_text="not shown again").is_visible()
    tab.check("keys-created")
    models = f"{server.url}/api/v1/models/list"
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.get(models, headers=bearer, timeout=30).status_code == 200

    tab.goto("/console/keys")
    assert key not in page.content()  # shown once
    row = page.get_by_role("row").filter(has_text="notebook")
    assert "active" in row.inner_text()
    row.get_by_role("button", name="Revoke key notebook").click()
    revoked = page.get_by_role("row").filter(has_text="notebook")
    assert "revoked" in revoked.inner_text()
    assert httpx.get(models, headers=bearer, timeout=30).status_code == 401
    tab.check()


def test_a_link_from_another_site_leaves_the_open_forms_working(browse: Browse) -> None:
    """Tab A has a form open; tab B follows a link to the console from another site (here a
    data: page, an opaque origin). The CSRF cookie went along (SameSite=Lax): no new token
    replaced A's, so A's form still submits."""
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/keys")
    other = page.context.new_page()
    link = f'<a id="to-console" href="{browse.server.url}/console/jobs">console</a>'
    other.goto(f"data:text/html,{link}")
    other.click("#to-console")
    other.wait_for_url("**/console/jobs")
    page.get_by_label("Name").fill("after-a-link")
    page.get_by_role("button", name="Create key").click()
    assert page.locator("#new-key").inner_text().strip().startswith("tnlp_")
    cookie = next(c for c in page.context.cookies() if c["name"] == "textnlp_csrf")
    assert cookie["sameSite"] == "Lax" and cookie["httpOnly"]


def test_after_logout_the_back_button_shows_no_data(browse: Browse) -> None:
    tab = browse.page(ALICE, fresh=True)
    page = tab.page
    tab.goto("/console/keys")
    page.get_by_label("Name").fill("private-marker-7d1")
    page.get_by_role("button", name="Create key").click()
    tab.goto("/console/keys")
    assert "private-marker-7d1" in page.content()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/console/login")
    page.go_back()
    page.wait_for_load_state()
    assert "/console/login" in page.url
    assert "private-marker-7d1" not in page.content()
    page.go_forward()
    page.wait_for_load_state()
    assert "private-marker-7d1" not in page.content()
    tab.goto("/console/keys")
    assert "/console/login" in page.url and "Log out" not in page.content()


def test_the_playground_clears_a_fixed_error_and_says_when_the_session_ended(
    browse: Browse,
) -> None:
    from playwright.sync_api import expect

    tab = browse.page(ALICE, fresh=True)
    page = tab.page
    tab.goto("/console/playground")
    page.fill("#pg-n", "100")  # the commands' preview refuses it
    expect(page.locator("#flash")).to_contain_text("less than or equal to 8")
    page.fill("#pg-n", "1")  # it stayed after the fix, and after a run
    expect(page.locator("#flash")).to_be_empty()
    elsewhere = page.context.new_page()  # the user logs out in another tab
    elsewhere.goto(f"{tab.origin}/console/keys")
    elsewhere.get_by_role("button", name="Log out").click()
    elsewhere.wait_for_url("**/console/login")
    page.fill("#pg-prompt", "Say hi.")
    page.locator("#pg-run").click()  # it said "the stream ended early"
    expect(page.locator("#run-status")).to_contain_text("your session has ended: log in again")


#: What a browser does when its tab goes to the background (a test's tabs all stay visible).
HIDE_TAB = """() => {
  Object.defineProperty(document, "hidden", { value: true, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_jobs_pages_in_hidden_tabs_leave_the_browsers_connections_free(browse: Browse) -> None:
    # Six open jobs pages held the six connections a browser has to a local (HTTP/1.1)
    # server: a seventh page never loaded.
    context = browse.page(ALICE).page.context
    for _ in range(6):
        jobs = context.new_page()
        jobs.goto("/console/jobs")
        jobs.evaluate(HIDE_TAB)
    keys = context.new_page()
    keys.goto("/console/keys", timeout=20_000)
    assert keys.get_by_role("heading", name="API keys").is_visible()


def test_another_user_cannot_open_the_first_users_job(browse: Browse, server: Served) -> None:
    job = submit_job(server, api_headers(server, ALICE), template="qa-pairs", count=2)
    own = browse.page(ALICE)
    own.goto(f"/console/jobs/{job['id']}")
    assert job["id"] in own.page.content()
    other = browse.page(BOB)
    pages = ("", "/records", "/report", "/download")
    for path in [f"/console/jobs/{job['id']}{page}" for page in pages]:
        other.goto(path, status=404)
        assert other.page.get_by_role("heading", level=1).inner_text() == "Error 404"
        assert "qa-pairs" not in other.page.content()
    other.goto(f"/console/jobs/events?job={job['id']}", status=404)  # nor its live progress
    other.goto("/console/jobs")
    assert job["id"] not in other.page.content()
    other.check("job-of-another-user")
    admin = browse.page(ADMIN)  # an administrator sees every user's jobs
    admin.goto(f"/console/jobs/{job['id']}")


def no_script_ran(tab: Tab) -> None:
    assert tab.page.evaluate("() => window.__xss") is None
    assert not tab.dialogs, tab.dialogs
    assert not tab.page.locator("main script, main img[src='x']").count()


def test_markup_in_a_users_template_and_key_name_is_shown_inert(browse: Browse) -> None:
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/jobs")
    option = page.locator("#job-template option[value='xss-probe']")
    assert '<script>window.__xss = "description"' in (option.text_content() or "")
    no_script_ran(tab)
    tab.goto("/console/keys")
    hostile = '<img src=x onerror="window.__xss = 5"><script>alert(6)</script>'
    page.get_by_label("Name").fill(hostile)
    page.get_by_role("button", name="Create key").click()
    assert hostile in page.get_by_role("alert").inner_text()
    assert page.get_by_role("cell", name=hostile, exact=True).count() == 1
    no_script_ran(tab)
    tab.check()


def focus_descriptions(tab: Tab, presses: int, stop_at: str | None = None) -> list[str]:
    """What each Tab press focuses: an element's id, else its href, else its text."""
    seen = []
    for _ in range(presses):
        tab.page.keyboard.press("Tab")
        seen.append(
            tab.page.evaluate(
                """() => { const e = document.activeElement;
                 return e.id || e.getAttribute('href') || e.innerText.trim() || e.tagName; }"""
            )
        )
        if seen[-1] == stop_at:
            break
    return seen


def test_the_keyboard_reaches_the_nav_and_the_forms_in_order(browse: Browse) -> None:
    visitor = browse.page()
    visitor.goto("/console/login")
    page = visitor.page
    assert page.evaluate("() => document.activeElement.id") == "username"  # autofocus
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/console/login" not in url)

    tab = browse.page(ALICE)
    tab.goto("/console/keys")
    order = focus_descriptions(tab, 40, stop_at="key-name")
    assert order[0] == "#main"  # the skip link comes first
    nav = ["/console/playground", "/console/catalog", "/console/jobs", "/console/keys"]
    assert [href for href in order if href in nav] == nav
    assert "/console/admin" not in order  # not an administrator
    assert order.index("/console/keys") < order.index("Log out") < order.index("key-name")
    tab.page.keyboard.type("from-the-keyboard")
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("() => document.activeElement.innerText") == "Create key"
    tab.page.keyboard.press("Enter")  # Enter on the button submits the form
    tab.page.get_by_role("alert").filter(has_text="from-the-keyboard").wait_for()
    tab.goto("/console/keys")
    tab.page.keyboard.press("Tab")
    tab.page.keyboard.press("Enter")  # the skip link moves the focus to the content
    assert tab.page.evaluate("() => document.activeElement.id") == "main"
