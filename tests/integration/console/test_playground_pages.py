"""The playground on a real app: its page and fields, samples streamed as Server-Sent Events
(through the API's serving path: spending recorded, cost told), a recipe's preview, the
equivalent commands shell-quoted, CSRF, and a hostile template rendered inert.

Fast fake models (``pages_app``): ``fake-fast`` answers ``text <digest>`` word by word,
``fake-priced`` costs $1 per 1K prompt tokens and $2 per 1K completion tokens.
"""

from __future__ import annotations

import json
import shlex

import pytest
from fastapi.testclient import TestClient

from tests.integration.console.pages_app import (
    SCRIPT,
    browser,
    commands_of,
    htmx,
    log_in,
    pages_app,
    sse_events,
)
from tests.support.api import Api
from tests.support.priced_backend import COMPLETION_TOKENS, PRICE
from textnlp.services.spending import SpendingService

__all__ = ["browser", "pages_app"]

PAGE = "/console/playground"
STREAM = "/console/playground/stream"
FAST = {"model": "fake-fast", "max_tokens": "16", "temperature": "0"}


def words(command: str) -> list[str]:
    """A command's arguments as a shell reads them (line continuations included)."""
    return shlex.split(command.replace("\\\n", " "))


def test_the_page_needs_a_session(browser: TestClient) -> None:
    answer = browser.get(PAGE)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/playground"


def test_the_page_lists_models_and_sources_with_the_commands_of_a_free_prompt(
    browser: TestClient,
) -> None:
    log_in(browser)
    page = browser.get(PAGE)
    assert page.status_code == 200, page.text
    text = page.text
    for name in ("fake-fast", "fake-priced", "smollm2-135m", "product-review", "product-reviews"):
        assert f'value="{name}"' in text
    assert '<script src="/console/static/playground.js" defer></script>' in text
    assert 'name="prompt"' in text and 'aria-live="polite"' in text
    assert 'name="prompt" rows="5" maxlength="32000"' in text  # what the server takes
    commands = commands_of(text)
    assert commands[0].startswith("textnlp jobs submit")
    assert "/api/v1/generate/text" in commands[-1]
    script = browser.get("/console/static/playground.js")
    assert script.status_code == 200 and "getReader" in script.text


def test_a_model_the_page_cannot_select_is_not_in_its_commands(browser: TestClient) -> None:
    log_in(browser)
    asked = browser.get(f"{PAGE}?model=zzz")
    chosen = browser.get(f"{PAGE}?model=fake-fast")
    assert asked.status_code == chosen.status_code == 200
    assert not any("zzz" in c for c in commands_of(asked.text))
    assert any("--model fake-fast" in c for c in commands_of(chosen.text))


def test_a_template_chosen_in_the_query_has_a_field_per_variable(browser: TestClient) -> None:
    log_in(browser)
    text = browser.get(PAGE, params={"source": "product-review", "model": "fake-fast"}).text
    for variable in ("category", "product", "rating", "sentiment", "aspect", "words"):
        assert f'name="var.{variable}"' in text
    assert '<option value="fake-fast" selected>' in text
    cli = commands_of(text)[0]
    assert cli.startswith("textnlp generate --template product-review")
    assert "--model fake-fast" in cli


def test_the_page_leaves_out_query_parameters_it_does_not_know(browser: TestClient) -> None:
    # A link from a newsletter (?utm_source=...) answered 422; a bad known field still does.
    log_in(browser)
    page = browser.get(PAGE, params={"utm_source": "newsletter", "source": "product-review"})
    assert page.status_code == 200 and 'name="var.category"' in page.text
    assert browser.get(PAGE, params={"max_tokens": "0"}).status_code == 422


def test_the_fields_of_a_recipe_are_its_cheap_columns_and_a_preview_button(
    browser: TestClient,
) -> None:
    token = log_in(browser)
    fields = browser.get(
        f"{PAGE}/fields", params={"source": "product-reviews"}, headers=htmx(token)
    )
    assert fields.status_code == 200, fields.text
    assert "<html" not in fields.text  # a fragment
    assert 'name="var.category"' in fields.text and 'name="var.sentiment"' in fields.text
    assert 'name="var.review"' not in fields.text  # an llm column is generated, not fixed
    assert 'name="var.long_enough"' not in fields.text  # nor is a filter
    assert 'hx-swap-oob="true"' in fields.text and "Preview records" in fields.text
    assert fields.headers["HX-Trigger"] == "playground-source"
    free = browser.get(f"{PAGE}/fields", params={"source": ""}, headers=htmx(token))
    assert 'name="prompt"' in free.text and ">Generate</button>" in free.text
    unknown = browser.get(f"{PAGE}/fields", params={"source": "nope"}, headers=htmx(token))
    assert unknown.status_code == 404


def test_a_free_prompt_streams_tokens_then_usage_latency_and_cost(browser: TestClient) -> None:
    token = log_in(browser)
    form = {**FAST, "prompt": "Say hello.", "n": "2"}
    with browser.stream("POST", STREAM, data=form, headers={"X-CSRF-Token": token}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = sse_events(answer)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and "error" not in names
    assert events[0][1] == {"model": "fake-fast", "samples": 2}
    tokens = [data for name, data in events if name == "token"]
    assert {t["index"] for t in tokens} == {0, 1}
    for index in (0, 1):
        text = "".join(t["text"] for t in tokens if t["index"] == index)
        assert text.startswith("text ")  # the fake backend's answer, streamed word by word
    samples = [data for name, data in events if name == "sample"]
    assert [s["index"] for s in samples] == [0, 1]
    assert all(
        s["finish_reason"] == "stop" and s["usage"]["completion_tokens"] > 0 for s in samples
    )
    done = events[-1][1]
    usage = done["usage"]
    assert usage["completion_tokens"] == sum(s["usage"]["completion_tokens"] for s in samples)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert done["latency_ms"] >= 0 and done["first_token_ms"] is not None
    assert done["cost_usd"] is None  # an unpriced model


def test_a_template_streams_with_its_variables(browser: TestClient) -> None:
    token = log_in(browser)
    form = {**FAST, "source": "product-review", "var.rating": "5", "seed": "3"}
    with browser.stream("POST", STREAM, data=form, headers={"X-CSRF-Token": token}) as answer:
        assert answer.status_code == 200
        events = sse_events(answer)
    assert [n for n, _ in events if n not in ("token",)] == ["start", "sample", "done"]
    assert "".join(d["text"] for n, d in events if n == "token").strip()


def test_a_priced_model_tells_its_cost_and_the_user_spends_it(
    browser: TestClient, pages_app: Api
) -> None:
    token = log_in(browser, "bob")
    spending: SpendingService = pages_app.client.app.state.spending  # type: ignore[attr-defined]
    bob = pages_app.client.app.state.auth.user("bob")  # type: ignore[attr-defined]
    before = spending.spent(bob.id)
    form = {"model": "fake-priced", "prompt": "Say hello.", "max_tokens": "20"}
    with browser.stream("POST", STREAM, data=form, headers={"X-CSRF-Token": token}) as answer:
        assert answer.status_code == 200
        events = sse_events(answer)
    done = events[-1]
    assert done[0] == "done", events
    cost = (2 * PRICE["input_per_1k"] + COMPLETION_TOKENS * PRICE["output_per_1k"]) / 1000
    assert done[1]["cost_usd"] == pytest.approx(cost)
    assert spending.spent(bob.id) == pytest.approx(before + cost)


def test_the_stream_refuses_a_request_without_its_csrf_token(browser: TestClient) -> None:
    token = log_in(browser)
    form = {**FAST, "prompt": "Say hello."}
    assert browser.post(STREAM, data=form).status_code == 403
    assert browser.post(STREAM, data=form, headers={"X-CSRF-Token": "forged"}).status_code == 403
    cross_site = {"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}
    assert browser.post(STREAM, data=form, headers=cross_site).status_code == 403


def test_the_stream_refuses_bad_forms_before_streaming(browser: TestClient) -> None:
    token = log_in(browser)
    headers = {"X-CSRF-Token": token}
    cases = [
        ({**FAST, "prompt": "  "}, 422),
        ({**FAST, "source": "product-reviews"}, 422),  # a recipe is previewed
        ({**FAST, "prompt": "hi", "temperature": "3"}, 422),
        ({**FAST, "prompt": "hi", "n": "99"}, 422),
        ({**FAST, "source": "../../etc/passwd"}, 422),  # ids only, never paths
        ({**FAST, "source": "nope"}, 404),
        ({**FAST, "model": "nope", "prompt": "hi"}, 404),
        ({**FAST, "source": "product-review", "var.nope": "1"}, 422),
    ]
    for form, status in cases:
        answer = browser.post(STREAM, data=form, headers=headers)
        assert answer.status_code == status, (form, answer.text)
        assert "text/html" in answer.headers["content-type"]


def test_a_recipe_previews_records_with_every_column(browser: TestClient) -> None:
    token = log_in(browser)
    form = {**FAST, "source": "product-reviews", "n": "2", "var.category": "books"}
    answer = browser.post(f"{PAGE}/preview", data=form, headers=htmx(token))
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "Record 0" in text and "Record 1" in text and "Nothing was written" in text
    for column in ("category", "product", "rating", "review"):
        assert f'<th scope="row">{column}</th>' in text
    assert "a mystery novel" in text  # the fixed category's product
    assert browser.post(f"{PAGE}/preview", data=form).status_code == 403  # no CSRF token


def test_the_commands_follow_the_form_and_are_shell_quoted(browser: TestClient) -> None:
    token = log_in(browser)
    hostile = "5 stars'; rm -rf / #"
    form = {
        **FAST,
        "source": "product-review",
        "var.aspect": hostile,
        "var.unknown": "dropped",
        "n": "3",
        "seed": "7",
    }
    answer = browser.post(f"{PAGE}/commands", data=form, headers=htmx(token))
    assert answer.status_code == 200, answer.text
    cli, api = commands_of(answer.text)
    args = words(cli)
    assert args[:4] == ["textnlp", "generate", "--template", "product-review"]
    assert args[args.index("--count") + 1] == "3"
    assert args[args.index("--var") + 1] == f"aspect={hostile}"
    assert "unknown=dropped" not in args  # not a variable of the chosen template
    assert args[args.index("--temperature") + 1] == "0.0"
    curl = words(api)
    assert curl[:4] == ["curl", "-sS", "-X", "POST"]
    assert curl[4].endswith("/api/v1/generate/text")
    body = json.loads(curl[curl.index("-d") + 1])
    assert body["template"] == "product-review" and body["variables"] == {"aspect": hostile}
    assert body["n"] == 3 and body["seed"] == 7 and body["model"] == "fake-fast"
    recipe = browser.post(
        f"{PAGE}/commands", data={"source": "product-reviews", "n": "2"}, headers=htmx(token)
    )
    preview, dataset, batch = commands_of(recipe.text)
    assert words(preview) == ["textnlp", "preview", "product-reviews", "--count", "2"]
    assert words(dataset)[:6] == [
        "textnlp",
        "generate",
        "--recipe",
        "product-reviews",
        "--count",
        "2",
    ]
    assert "/api/v1/generate/batch" in batch and '"recipe": "product-reviews"' in batch


def test_a_hostile_template_renders_inert(browser: TestClient) -> None:
    token = log_in(browser)
    page = browser.get(PAGE, params={"source": "hostile"}).text
    fields = browser.get(f"{PAGE}/fields", params={"source": "hostile"}, headers=htmx(token)).text
    for text in (page, fields):
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'name="var.x&#34;&gt;&lt;script&gt;alert(3)&lt;/script&gt;"' in fields
    form = {**FAST, "source": "hostile", "var.topic": SCRIPT}
    with browser.stream("POST", STREAM, data=form, headers={"X-CSRF-Token": token}) as answer:
        events = sse_events(answer)
    assert events[-1][0] == "done"  # generated text travels as JSON, set as text by the page


def test_a_disabled_users_samples_stop_within_the_recheck(
    pages_app: Api, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the API's streams: a logout or a disabled user ends the samples at the next check of
    the session (they streamed to the end, up to 8 x 4096 tokens)."""
    monkeypatch.setattr("textnlp.api.deps.RECHECK_S", 0.0)  # every token looks
    auth = pages_app.client.app.state.auth  # type: ignore[attr-defined]
    token = log_in(browser, "bob")
    form = {**FAST, "prompt": "Say hello.", "n": "8", "max_tokens": "64"}
    names: list[str] = []
    try:
        with browser.stream("POST", STREAM, data=form, headers={"X-CSRF-Token": token}) as answer:
            for line in answer.iter_lines():
                if line.startswith("event:"):
                    names.append(line.partition(":")[2].strip())
                    if names[-1] == "token" and names.count("token") == 1:
                        auth.set_active("bob", False)
    finally:
        auth.set_active("bob", True)
    assert names[-1] == "error" and "done" not in names
    assert names.count("sample") < 8
