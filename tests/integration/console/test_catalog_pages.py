"""Templates & recipes on a real app: the list (built-ins and the user's directory), an entry's
detail with its rendered sample prompt, a preview of a few records, unknown ids (404) and a
hostile template rendered inert."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from tests.integration.console.pages_app import browser, htmx, log_in, pages_app
from tests.support.api import Api
from tests.support.console import csrf_of
from textnlp.api.console.csrf import CSRF_FIELD

__all__ = ["browser", "pages_app"]

CATALOG = "/console/catalog"


def test_the_list_has_every_template_and_recipe(browser: TestClient, pages_app: Api) -> None:
    assert browser.get(CATALOG).status_code == 303  # no session: the login page
    log_in(browser)
    page = browser.get(CATALOG)
    assert page.status_code == 200, page.text
    library = pages_app.client.app.state.generation.templates  # type: ignore[attr-defined]
    for source in [*library.recipes(), *library.all()]:
        assert f'<a href="/console/catalog/{source.id}">{source.id}</a>' in page.text
    assert "product-reviews" in page.text and "recipe" in page.text
    row = page.text.split('href="/console/catalog/hostile"', 1)[1].split("</tr>", 1)[0]
    assert "<td>yours</td>" in row  # from the user's templates directory
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_a_template_shows_its_variables_and_a_rendered_sample_prompt(
    browser: TestClient,
) -> None:
    log_in(browser)
    page = browser.get(f"{CATALOG}/product-review")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    for variable in ("category", "rating", "sentiment", "aspect", "words"):
        assert f'<th scope="row">{variable}</th>' in text
    sample = text.split('<pre class="prompt" id="sample-prompt">', 1)[1].split("</pre>", 1)[0]
    assert "out of 5 stars" in sample and "{{" not in sample  # rendered, not as written
    assert "Write a {{ sentiment }} review" in text  # the prompt as written, too
    assert 'href="/console/playground?source=product-review"' in text
    assert 'hx-post="/console/catalog/product-review/preview"' in text


def test_a_recipe_shows_its_columns_prompts_and_a_sample_prompt(browser: TestClient) -> None:
    log_in(browser)
    page = browser.get(f"{CATALOG}/product-reviews")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    for column in ("category", "review", "not_a_refusal", "long_enough"):
        assert f'<th scope="row">{column}</th>' in text
    assert "filter:refusal" in text and "llm-text" in text
    sample = text.split('<pre class="prompt" id="sample-prompt">', 1)[1].split("</pre>", 1)[0]
    assert "out of 5 stars" in sample and "{{" not in sample
    assert "for column <strong>review</strong>" in text


def test_an_unknown_id_is_a_404(browser: TestClient) -> None:
    log_in(browser)
    for source_id in ("nope", "..%2F..%2Fetc%2Fpasswd", "product-review.yaml"):
        answer = browser.get(f"{CATALOG}/{source_id}")
        assert answer.status_code == 404, source_id
        assert "text/html" in answer.headers["content-type"]
    token = csrf_of(browser, f"{CATALOG}/product-review")
    missing = browser.post(f"{CATALOG}/nope/preview", data={CSRF_FIELD: token})
    assert missing.status_code == 404


def test_preview_makes_a_few_records_of_a_template(browser: TestClient) -> None:
    log_in(browser)
    token = csrf_of(browser, f"{CATALOG}/product-review")
    form = {"model": "fake-fast", "count": "2", "seed": "1"}
    answer = browser.post(f"{CATALOG}/product-review/preview", data=form, headers=htmx(token))
    assert answer.status_code == 200, answer.text
    assert "<html" not in answer.text  # a fragment for htmx
    assert "Record 0: ok" in answer.text and "Record 1: ok" in answer.text
    assert '<th scope="row">text</th>' in answer.text and "2 of 2 candidates passed" in answer.text
    again = browser.post(f"{CATALOG}/product-review/preview", data=form, headers=htmx(token))
    assert again.text.split("<article", 1)[1] == answer.text.split("<article", 1)[1]  # seeded
    # A plain form post (no htmx) works too, with the token in the form.
    plain = browser.post(f"{CATALOG}/product-review/preview", data={**form, CSRF_FIELD: token})
    assert plain.status_code == 200 and "Record 0" in plain.text


def test_preview_of_a_recipe_shows_rejected_candidates_with_reasons(browser: TestClient) -> None:
    log_in(browser)
    token = csrf_of(browser, f"{CATALOG}/product-reviews")
    form = {"model": "fake-fast", "count": "1"}
    answer = browser.post(f"{CATALOG}/product-reviews/preview", data=form, headers=htmx(token))
    assert answer.status_code == 200, answer.text
    # The fake model's two-word answers fail the recipe's length filter: shown with the reason.
    assert "Record 0: rejected" in answer.text and "long_enough" in answer.text
    assert '<th scope="row">review</th>' in answer.text


def test_preview_needs_the_csrf_token(browser: TestClient) -> None:
    log_in(browser)
    form = {"model": "fake-fast", "count": "1"}
    assert browser.post(f"{CATALOG}/product-review/preview", data=form).status_code == 403
    bad = {"HX-Request": "true", "X-CSRF-Token": "forged"}
    refused = browser.post(f"{CATALOG}/product-review/preview", data=form, headers=bad)
    assert refused.status_code == 403 and refused.headers["HX-Retarget"] == "#flash"


def test_preview_bounds_the_count(browser: TestClient) -> None:
    log_in(browser)
    token = csrf_of(browser, f"{CATALOG}/product-review")
    for count in ("0", "99"):
        form = {"model": "fake-fast", "count": count}
        answer = browser.post(f"{CATALOG}/product-review/preview", data=form, headers=htmx(token))
        assert answer.status_code == 422, count


def test_a_hostile_template_renders_inert(browser: TestClient) -> None:
    token = log_in(browser)
    page = browser.get(f"{CATALOG}/hostile")
    assert page.status_code == 200, page.text
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "<b>bold</b>" not in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    form = {"model": "fake-fast", "count": "2"}
    preview = browser.post(f"{CATALOG}/hostile/preview", data=form, headers=htmx(token))
    assert preview.status_code == 200, preview.text
    assert "<script>alert" not in preview.text


def test_a_priced_preview_is_counted_as_the_users_spending(
    browser: TestClient, pages_app: Api
) -> None:
    state = pages_app.client.app.state  # type: ignore[attr-defined]
    bob = state.auth.user("bob")
    before = state.spending.spent(bob.id)
    token = log_in(browser, "bob")
    form = {"model": "fake-priced", "count": "2"}
    answer = browser.post(f"{CATALOG}/product-review/preview", data=form, headers=htmx(token))
    assert answer.status_code == 200, answer.text
    shown = re.search(r"passed; cost \$(\d+\.\d+)\.", answer.text)
    assert shown is not None, answer.text
    spent = state.spending.spent(bob.id) - before
    assert spent > 0 and spent == pytest.approx(float(shown[1]), abs=1e-6)
