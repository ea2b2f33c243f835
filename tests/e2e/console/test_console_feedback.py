"""What the console tells a person when something goes wrong or a page is narrow, in chromium
on the embedded model: Enter runs a recipe's preview, a request that reached no server says so,
an error answer is shown where it can be seen, a page whose live updates stopped says so, and at
phone width neither the keys table nor a record's labels scroll the page sideways.

A server that cannot be reached is the browser's network failing the request (Playwright's
``route.abort``): nothing of the server's is faked.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.console.conftest import ALICE, PHONE, Browse, api_headers, submit_job
from tests.support.serve import Served

pytestmark = pytest.mark.slow
UNREACHABLE = "The server could not be reached; try again."


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_enter_in_a_field_previews_a_recipe(browse: Browse) -> None:
    # A recipe's only button was type="button": Enter submitted nothing, and nothing said so.
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/playground?source=product-reviews")
    expect(page.locator("#pg-run")).to_have_text("Preview records")
    page.fill("#pg-n", "1")
    # The preview's request is all this test needs: the network drops it (no generation).
    page.route("**/console/playground/preview", lambda route: route.abort())
    with page.expect_request("**/console/playground/preview") as sent:
        page.locator("#pg-n").press("Enter")
    assert sent.value.method == "POST"
    expect(page.locator("#run-status")).to_have_text("The preview failed.")
    assert page.url.endswith("/console/playground?source=product-reviews")  # no page load


def test_a_request_that_reaches_no_server_says_so(browse: Browse) -> None:
    # The catalogue's preview (and every other htmx request) failed silently.
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/catalog/qa-pairs")
    page.route("**/console/catalog/qa-pairs/preview", lambda route: route.abort())
    page.get_by_role("button", name="Preview", exact=True).click()
    alert = page.locator("#flash").get_by_role("alert")
    expect(alert).to_have_text(UNREACHABLE)
    expect(alert).to_be_in_viewport()
    expect(page.get_by_role("button", name="Preview", exact=True)).to_be_enabled()


def test_a_previews_error_is_shown_in_view(browse: Browse) -> None:
    # The server's message went to #flash, at the top of a long page, out of sight.
    tab = browse.page(ALICE, viewport={"width": 1280, "height": 600})
    page = tab.page
    tab.goto("/console/catalog/qa-pairs")
    count = page.locator("#preview-count")
    count.evaluate("input => input.removeAttribute('max')")  # past the form: the server refuses
    count.fill("1000")
    page.get_by_role("button", name="Preview", exact=True).click()
    message = page.locator("#flash .flash-error")
    expect(message).to_contain_text("count")
    expect(message).to_be_in_viewport()
    seed = page.locator("#preview-seed")
    assert seed.get_attribute("max") == str(2**32 - 1)  # the browser refuses a larger seed


def test_a_jobs_page_says_when_its_live_updates_stopped(browse: Browse, server: Served) -> None:
    # The session ended (logged out in another tab): the page froze and said nothing.
    job = submit_job(server, api_headers(server, ALICE), template="qa-pairs", count=2)
    tab = browse.page(ALICE, fresh=True)
    page = tab.page
    tab.goto(f"/console/jobs/{job['id']}")
    expect(page.locator("[data-field='state']")).to_have_text("queued")
    elsewhere = page.context.new_page()
    elsewhere.goto(f"{tab.origin}/console/keys")
    elsewhere.get_by_role("button", name="Log out").click()
    elsewhere.wait_for_url("**/console/login")
    expect(page.locator("#flash")).to_contain_text(
        "Live updates stopped: reload the page or log in again.", timeout=60_000
    )


def test_the_keys_page_with_a_key_fits_a_phone(browse: Browse, server: Served) -> None:
    # The visually hidden "Actions" header escaped the table's scroll area and widened the page.
    made = httpx.post(
        f"{server.url}/api/v1/auth/api-keys",
        json={"name": "phone"},
        headers=api_headers(server, ALICE),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    tab = browse.page(ALICE, viewport=PHONE)
    tab.goto("/console/keys")
    assert tab.page.get_by_role("button", name="Revoke key phone").count() == 1
    tab.no_horizontal_scroll()


#: A record's labels as ``records_list.html`` renders them, with one long unbroken value.
LABELS = """() => {
  const list = document.createElement("ol");
  list.className = "records";
  list.innerHTML = '<li class="record"><dl class="labels"><div><dt>source</dt><dd>' +
    "x".repeat(400) + "</dd></div></dl></li>";
  document.getElementById("main").append(list);
}"""


def test_a_long_label_value_wraps_at_phone_width(browse: Browse) -> None:
    # dl.labels had no overflow-wrap: a long value made the records page scroll sideways.
    tab = browse.page(ALICE, viewport=PHONE)
    tab.goto("/console/keys")
    tab.page.evaluate(LABELS)
    tab.no_horizontal_scroll()


def test_an_error_naming_a_long_word_wraps_at_phone_width(browse: Browse) -> None:
    # .flash had no overflow-wrap: a refusal quoting a long unbroken name (a variable the
    # template lacks, a job id) made the page scroll sideways (2,922 px in 375).
    name = "x" * 300
    tab = browse.page(ALICE, viewport=PHONE)
    page = tab.page
    tab.goto("/console/jobs")
    page.get_by_label("Template or recipe").select_option("product-review")
    page.get_by_label("Records").fill("1")
    page.get_by_label("Variables").fill(f"{name}=1")
    page.get_by_role("button", name="Submit job").click()
    expect(page.get_by_role("alert")).to_contain_text(f"no variable '{name}'")
    tab.no_horizontal_scroll()
    tab.goto(f"/console/jobs/{name}", status=404)
    expect(page.locator(".flash-error")).to_contain_text(f"no job '{name[:40]}")
    tab.no_horizontal_scroll()


def test_a_deleted_job_leaves_an_open_list(browse: Browse, server: Served) -> None:
    # The list's rows were only ever updated or added: a job deleted elsewhere (or purged)
    # stayed listed, linking a 404, until a reload.
    headers = api_headers(server, ALICE)
    job = submit_job(server, headers, template="qa-pairs", count=2)
    status = f"{server.url}/api/v1/generate/status/{job['id']}"
    assert httpx.delete(status, headers=headers, timeout=30).status_code == 200  # cancelled
    tab = browse.page(ALICE)
    tab.goto("/console/jobs")
    row = tab.page.locator(f"#job-rows tr[data-job-id='{job['id']}']")
    expect(row.locator("[data-field='state']")).to_have_text("cancelled")
    assert httpx.delete(status, headers=headers, timeout=30).status_code == 204  # deleted
    expect(row).to_have_count(0, timeout=60_000)
    tab.check()
