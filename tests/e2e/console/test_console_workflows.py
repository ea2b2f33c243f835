"""What people do in the console, in chromium, on the embedded model: generate in the playground
and watch the text stream in; submit a job and watch its progress reach 100 % while a worker
runs it; open its records and report; cancel a job; look at the admin page; and markup in a
user's template stays text on every page that shows it.

Jobs run under ``textnlp worker --once`` started beside the server (as ``tests/e2e/
test_jobs_cli.py`` runs them): in the background when the test watches the progress live.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.console.conftest import (
    ADMIN,
    ALICE,
    MODEL,
    Browse,
    Tab,
    api_headers,
    submit_job,
)
from tests.support.serve import Served

pytestmark = pytest.mark.slow
#: Long enough for the embedded model on a busy two-core machine (no timing is asserted).
SLOW_MS = 240_000


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def no_worker_running(server: Served) -> None:
    """Jobs submitted now stay queued (until a test starts a worker)."""
    for worker in server.workers:
        assert worker.wait(timeout=300) == 0


def test_generate_in_the_playground_and_see_the_text_stream_in(browse: Browse) -> None:
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/playground")
    page.select_option("#pg-model", MODEL)
    page.select_option("#pg-source", "qa-pairs")
    expect(page.locator("#source-fields")).to_contain_text("Details of qa-pairs")
    page.fill("#pg-max-tokens", "16")
    page.fill("#pg-n", "2")
    expect(page.locator("#commands")).to_contain_text("qa-pairs")
    # Count the updates of the samples' text: a stream updates it once per token event.
    page.evaluate(
        """() => {
          window.__updates = 0;
          new MutationObserver((changes) => {
            window.__updates += changes.filter((c) =>
              c.target.closest && c.target.closest('.sample-text') ||
              c.target.parentElement && c.target.parentElement.closest('.sample-text')).length;
          }).observe(document.getElementById('output'),
                     {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.locator("#pg-run").click()
    stats = page.locator("#run-stats")
    expect(stats).to_be_visible(timeout=SLOW_MS)
    expect(page.locator("#run-status")).to_contain_text("Done: 2 samples")
    texts = page.locator("#output .sample-text").all_inner_texts()
    assert len(texts) == 2 and all(text.strip() for text in texts), texts
    assert page.evaluate("() => window.__updates") > 2  # streamed, not set once
    assert re.search(
        r"\d+ prompt \+ \d+ completion = \d+ tokens · latency \d+ ms", stats.inner_text()
    )
    assert "cost" in stats.inner_text()
    assert page.locator("#output .sample-meta").first.inner_text().count("tokens") == 1
    tab.check("playground-streamed")


def open_job_form(tab: Tab, template: str, count: int, max_tokens: int) -> str:
    """Submit the jobs page's form; the job's id (its page is open)."""
    page = tab.page
    tab.goto("/console/jobs")
    page.select_option("#job-template", template)
    page.fill("#job-count", str(count))
    page.select_option("#job-model", MODEL)
    page.fill("#job-max-tokens", str(max_tokens))
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(r".*/console/jobs/[0-9a-f]{8,}$"))
    return page.url.rsplit("/", 1)[-1]


def test_submit_a_job_watch_it_reach_100_percent_then_open_records_and_report(
    browse: Browse, server: Served
) -> None:
    no_worker_running(server)
    tab = browse.page(ALICE)
    page = tab.page
    job_id = open_job_form(tab, "product-review", count=3, max_tokens=24)
    state = page.locator("[data-field='state']")
    expect(state).to_have_text("queued")
    expect(page.locator("[data-field='progress-text']")).to_contain_text("0 / 3 (0 %)")
    page.evaluate("() => { window.__same_page = true; }")
    worker = server.worker()
    expect(page.locator("[data-field='progress-text']")).to_contain_text(
        "3 / 3 (100 %)", timeout=SLOW_MS
    )
    expect(state).to_have_text("succeeded")
    assert page.evaluate("() => window.__same_page") is True  # updated live, not reloaded
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()
    download = page.get_by_role("link", name=re.compile("Download results"))
    expect(download).to_be_visible()
    assert worker.wait(timeout=300) == 0
    tab.check("job-succeeded")

    page.get_by_role("link", name="Records", exact=True).click()
    page.wait_for_url(f"**/console/jobs/{job_id}/records")
    records = page.locator("li.record")
    expect(records).to_have_count(3)
    first = records.first
    first.locator("details.provenance summary").click()
    expect(first.locator(".provenance-list")).to_contain_text(MODEL)
    expect(first.locator(".provenance-list")).to_contain_text("product-review")
    tab.check("records")
    page.select_option("#f-status", "failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#viewer")).to_contain_text("No records match these filters")
    expect(records).to_have_count(0)

    tab.goto(f"/console/jobs/{job_id}/report")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Validation report of job")
    tab.check()
    with page.expect_download() as got:
        tab.goto(f"/console/jobs/{job_id}")
        page.get_by_role("link", name=re.compile("Download results")).click()
    lines = got.value.path().read_text().splitlines()
    assert len(lines) == 3


def test_a_job_made_elsewhere_appears_in_an_open_list(browse: Browse, server: Served) -> None:
    no_worker_running(server)
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/jobs")
    expect(page.locator("#job-rows")).to_be_visible()
    page.evaluate("() => { window.__same_page = true; }")
    job = submit_job(
        server, api_headers(server, ALICE), template="news-headline", count=2, model=MODEL
    )
    row = page.locator(f"tr[data-job-id='{job['id']}']")
    expect(row).to_be_visible(timeout=30_000)
    expect(row.locator("[data-field='state']")).to_have_text("queued")
    assert page.evaluate("() => window.__same_page") is True  # swapped in, not reloaded
    tab.check()


def test_cancel_a_job(browse: Browse, server: Served) -> None:
    no_worker_running(server)
    tab = browse.page(ALICE)
    page = tab.page
    open_job_form(tab, "news-headline", count=20, max_tokens=8)
    expect(page.locator("[data-field='state']")).to_have_text("queued")
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("[data-field='state']")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()
    tab.check("job-cancelled")
    tab.goto("/console/jobs")
    row = page.locator("tr[data-state='cancelled']")
    expect(row.first).to_be_visible()


def test_the_admin_page_as_an_administrator_and_not_as_a_user(browse: Browse) -> None:
    tab = browse.page(ADMIN)
    page = tab.page
    tab.goto("/console/admin")
    models = page.get_by_role("table", name="Availability and circuit breakers")
    expect(models.get_by_role("rowheader", name=MODEL)).to_be_visible()
    users = page.get_by_role("table", name=re.compile("^Users"))
    for username in ("ada", "alice", "bob"):
        expect(users.get_by_role("rowheader", name=username, exact=True)).to_be_visible()
    expect(page.get_by_role("table", name="Dependencies")).to_contain_text("database")
    page.get_by_role("button", name="Clear the response cache").click()
    expect(page.locator("#cache-result")).to_contain_text("Response cache cleared")
    tab.check("admin")
    user = browse.page(ALICE)
    user.goto("/console/admin", status=403)
    expect(user.page.get_by_role("heading", level=1)).to_have_text("Error 403")
    expect(user.page.get_by_role("link", name="Admin")).to_have_count(0)


def no_script_ran(tab: Tab) -> None:
    assert tab.page.evaluate("() => window.__xss") is None
    assert not tab.dialogs, tab.dialogs
    assert not tab.page.locator("main script, main img[src='x'], main b[onmouseover]").count()
    assert not tab.csp_violations(), tab.csp_violations()


def test_markup_in_a_users_template_stays_text_everywhere(browse: Browse, server: Served) -> None:
    """The user template ``xss-probe`` has markup in its description, prompts and variables."""
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/catalog")
    row = page.get_by_role("row").filter(has_text="xss-probe")
    expect(row).to_contain_text('<script>window.__xss = "description"')
    no_script_ran(tab)

    tab.goto("/console/catalog/xss-probe")
    main = page.get_by_role("main")
    expect(main).to_contain_text('<img src=x onerror="window.__xss = 1">')
    expect(main).to_contain_text('<script>window.__xss = "prompt"; alert("prompt")</script>')
    expect(main).to_contain_text('<b onmouseover="window.__xss = 3">who</b>')
    page.fill("#preview-count", "1")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-output")).to_contain_text("Record 0", timeout=SLOW_MS)
    no_script_ran(tab)
    tab.check("catalog-xss-probe")

    tab.goto("/console/playground")
    page.select_option("#pg-source", "xss-probe")
    expect(page.locator("#source-fields")).to_contain_text("Details of xss-probe")
    expect(page.locator("#source-fields")).to_contain_text('<script>window.__xss = "description"')
    page.fill("#pg-n", "1")
    page.locator("#pg-run").click()
    expect(page.locator("#run-stats")).to_be_visible(timeout=SLOW_MS)
    no_script_ran(tab)

    no_worker_running(server)
    job = submit_job(server, api_headers(server, ALICE), template="xss-probe", count=2, model=MODEL)
    server.work()
    tab.goto(f"/console/jobs/{job['id']}/records")
    expect(page.locator("li.record")).to_have_count(2)
    labels = page.locator("li.record dl.labels").all_inner_texts()
    assert any("<script>" in text or "<img" in text for text in labels), labels
    tab.goto(f"/console/jobs/{job['id']}")
    expect(page.get_by_role("main")).to_contain_text("xss-probe")
    no_script_ran(tab)
    tab.check()
