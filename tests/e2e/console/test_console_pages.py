"""Every console page in chromium, at desktop and at phone width (375 px): axe-core finds no
serious or critical violation, nothing is requested from another origin, no script breaks the
Content-Security-Policy, and at 375 px nothing scrolls sideways. A screenshot of each is saved
under ``artifacts/console/<page>-<desktop|phone>.png``.

The pages of a job (its page, records, report) are those of a small finished job made for the
module through the REST API and ``textnlp worker --once``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.console.conftest import (
    ADMIN,
    ALICE,
    DESKTOP,
    MODEL,
    PHONE,
    Browse,
    api_headers,
    submit_job,
)
from tests.support.serve import Served, ServeUser
from textnlp.api.console import pages

pytestmark = pytest.mark.slow
PAGES_DIR = Path(pages.__file__).parent


def page(
    name: str, user: ServeUser | None, path: str, status: int = 200, module: str | None = None
) -> Any:
    """One page to check; ``module``: the page module that serves it, skipped while it is not
    written (the report says which)."""
    missing = module is not None and not (PAGES_DIR / f"{module}.py").exists()
    reason = f"the console page module {module}.py is not there"
    return pytest.param(
        name, user, path, status, id=name, marks=pytest.mark.skipif(missing, reason=reason)
    )


#: (name, user, path, status); ``{job}`` is the module's finished job.
PAGES = [
    page("login", None, "/console/login"),
    page("keys", ALICE, "/console/keys"),
    page("playground", ALICE, "/console/playground", module="playground"),
    page("catalog", ALICE, "/console/catalog", module="catalog"),
    page("catalog-template", ALICE, "/console/catalog/qa-pairs", module="catalog"),
    page("catalog-recipe", ALICE, "/console/catalog/product-reviews", module="catalog"),
    page("jobs", ALICE, "/console/jobs", module="jobs"),
    page("job", ALICE, "/console/jobs/{job}", module="jobs"),
    page("records", ALICE, "/console/jobs/{job}/records", module="datasets"),
    page("report", ALICE, "/console/jobs/{job}/report", module="datasets"),
    page("admin", ADMIN, "/console/admin", module="admin"),
    page("not-found", ALICE, "/console/jobs/" + "0" * 32, 404),
]
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture(scope="module")
def job(server: Served) -> str:
    """A finished job of alice's: four short records of the ``product-review`` template, with a
    release gate lenient enough for a tiny model (so its report page has a report)."""
    gate = {
        "max_empty_rate": 0.5,
        "max_truncated_rate": 1.0,
        "max_json_invalid_rate": 1.0,
        "max_exact_duplicate_rate": 1.0,
        "max_near_duplicate_rate": 1.0,
        "max_pii_rate": 1.0,
        "max_mean_repetition": 1.0,
        "min_lexical_diversity": 0.0,
        "min_semantic_diversity": None,
        "max_leakage_rate": 1.0,
    }
    headers = api_headers(server, ALICE)
    made = submit_job(
        server,
        headers,
        template="product-review",
        count=4,
        model=MODEL,
        params={"max_tokens": 32},
        validation=gate,
    )
    server.work()
    status = httpx.get(f"{server.url}/api/v1/generate/status/{made['id']}", headers=headers)
    assert status.json()["state"] == "succeeded", status.text
    return str(made["id"])


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize(("name", "user", "path", "status"), PAGES)
def test_page_is_accessible_self_contained_and_fits_a_phone(
    request: pytest.FixtureRequest,
    browse: Browse,
    name: str,
    user: ServeUser | None,
    path: str,
    status: int,
    viewport: str,
) -> None:
    if "{job}" in path:
        path = path.format(job=request.getfixturevalue("job"))
    tab = browse.page(user, viewport=VIEWPORTS[viewport])
    tab.goto(path, status=status)
    tab.check(f"{name}-{viewport}")
    if viewport == "phone":
        tab.no_horizontal_scroll()
    assert tab.page.get_by_role("heading", level=1).count() == 1
    assert tab.page.get_by_role("main").count() == 1
    if user is not None and status == 200:  # an error page has no navigation
        nav = tab.page.get_by_role("navigation", name="Console")
        assert nav.get_by_role("link", name="Jobs").is_visible()
        admin_link = nav.get_by_role("link", name="Admin")
        assert admin_link.count() == (1 if user.admin else 0)
