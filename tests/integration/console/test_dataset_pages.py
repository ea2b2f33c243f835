"""The dataset viewer on a real app (TestClient, SQLite): a job's records, paged and filtered,
with their provenance, and its validation report.

The jobs are stored as a worker leaves them (``JobStore.create``, ``save_records``, ``finish``
with the result and report keys), so each test knows every record; the pages are read by users
logged in through the console's form.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.console.conftest import LOGIN_LIMITS
from tests.support.api import PASSWORD, Api, make_settings, start_api
from textnlp.adapters.db.job_store import NewJob
from textnlp.adapters.storage import Keys
from textnlp.domain import Record
from textnlp.domain.generation import GenerationParams
from textnlp.domain.records import CellProvenance, Provenance
from textnlp.services.job_models import JobMessage
from textnlp.services.jobs import JobService

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SENTIMENTS = ("positive", "negative", "neutral")
COUNT = 120
TIMEOUT = "Timeout: backend fake-fast timed out after 30 s"
LONG = "A very long review. " * 60


def provenance(index: int, **changes: Any) -> Provenance:
    values: dict[str, Any] = {
        "template_id": "product-review",
        "template_version": "3",
        "model": "fake-fast",
        "params": GenerationParams(max_tokens=64, temperature=0.7, seed=1000 + index),
        "seed": 1000 + index,
        "prompt_tokens": 40 + index,
        "completion_tokens": 20,
        "finish_reason": "stop",
        "latency_s": 0.125,
        "created_at": "2026-12-04T20:00:00+00:00",
        "cost_usd": 0.000125,
    }
    return Provenance(**(values | changes))


def review(index: int) -> Record:
    """Record ``index`` of the template job: every tenth failed; 7 holds a script, 8 is long,
    13 writes about crème brûlée."""
    text = f"Review {index}: the kettle works."
    if index == 7:
        text = f"Review 7: {SCRIPT} nice"
    elif index == 8:
        text = LONG
    elif index == 13:
        text = "Review 13: Crème brûlée flavoured tea."
    failed = index % 10 == 0
    return Record(
        index=index,
        status="failed" if failed else "ok",
        text="" if failed else text,
        variables={"sentiment": SENTIMENTS[index % 3], "stars": index % 5 + 1},
        error=TIMEOUT if failed else None,
        provenance=provenance(index, finish_reason="error" if failed else "stop"),
    )


def cell(model: str, seed: int) -> CellProvenance:
    return CellProvenance(
        model=model,
        params=GenerationParams(max_tokens=128, temperature=0.9, seed=seed),
        seed=seed,
        prompt_tokens=30,
        completion_tokens=50,
        latency_s=0.5,
        cost_usd=0.0002,
    )


def recipe_records() -> list[Record]:
    cells = {"question": cell("fake-fast", 11), "answer": cell("fake-slow", 12)}
    recipe = {"template_id": "persona-qa", "cells": cells}
    return [
        Record(
            index=0,
            text="Paris is the capital.",
            data={"question": "What is the capital of France?", "answer": "Paris."},
            variables={"persona": "teacher"},
            provenance=provenance(0, **recipe),
        ),
        Record(
            index=1,
            status="rejected",
            text="I do not know.",
            variables={"persona": "pirate"},
            error="filter quality: score 2 is below 3",
            provenance=provenance(1, **recipe),
        ),
    ]


@dataclass
class Jobs:
    reviews: str
    recipe: str
    empty: str
    from_file: str
    report_passed: bool


def new_job(service: JobService, owner_id: str, spec: dict[str, Any], total: int) -> str:
    job_id = uuid.uuid4().hex
    service.store.create(
        NewJob(
            id=job_id,
            owner_id=owner_id,
            spec=spec,
            queue="textnlp-generation",
            total=total,
            body=JobMessage(job_id=job_id).model_dump_json(),
        )
    )
    service.store.start(job_id, "test-worker")
    return job_id


def store_jobs(api: Api) -> Jobs:
    """alice's jobs, as a worker leaves them."""
    from textnlp.validation import Gate, validate_dataset

    app: Any = api.client.app
    service: JobService = app.state.jobs
    alice = str(app.state.auth.user("alice").id)
    store, storage = service.store, service.storage

    gate = {"max_exact_duplicate_rate": 0.5}
    reviews = new_job(
        service, alice, {"template": "product-review", "count": COUNT, "validation": gate}, COUNT
    )
    records = [review(i) for i in range(COUNT)]
    store.save_records(reviews, records)
    accepted = [r for r in records if r.status == "ok"]
    result_key = Keys.batch_result(reviews, "jsonl")
    storage.put_bytes(result_key, "".join(r.model_dump_json() + "\n" for r in accepted).encode())
    report = validate_dataset(accepted, embeddings=False, gate=Gate.model_validate(gate))
    report_key = Keys.validation_result(reviews)
    storage.put_bytes(report_key, report.model_dump_json().encode())
    store.finish(reviews, "succeeded", result_key=result_key, report_key=report_key)

    recipe = new_job(service, alice, {"template": "persona-qa", "count": 1}, 1)
    store.save_records(recipe, recipe_records())

    empty = new_job(service, alice, {"template": "product-review", "count": 5}, 5)

    # A finished job whose rows are gone: its result file is what is left.
    from_file = new_job(service, alice, {"template": "product-review", "count": 3}, 3)
    key = Keys.batch_result(from_file, "jsonl")
    lines = [review(i).model_copy(update={"text": f"From the file {i}"}) for i in (1, 2, 3)]
    storage.put_bytes(key, "".join(r.model_dump_json() + "\n" for r in lines).encode())
    store.finish(from_file, "succeeded", result_key=key)
    return Jobs(reviews, recipe, empty, from_file, report.passed)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from start_api(
        make_settings(tmp_path_factory.mktemp("console-datasets"), api=LOGIN_LIMITS)
    )


@pytest.fixture(scope="module")
def jobs(api: Api) -> Jobs:
    return store_jobs(api)


def log_in(api: Api, username: str) -> TestClient:
    client = TestClient(api.client.app, raise_server_exceptions=False, follow_redirects=False)
    login = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', login.text)
    assert token is not None
    answer = client.post(
        "/console/login",
        data={"csrf_token": token.group(1), "username": username, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture(scope="module")
def alice(api: Api) -> TestClient:
    return log_in(api, "alice")


def shown(html: str) -> list[int]:
    """The record indices a page shows, in order."""
    return [int(i) for i in re.findall(r'<li class="record" id="record-(\d+)">', html)]


def records(client: TestClient, job_id: str, query: str = "") -> str:
    answer = client.get(f"/console/jobs/{job_id}/records{query}")
    assert answer.status_code == 200, answer.text
    return answer.text


def link(html: str, rel: str) -> str:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    assert match is not None, f"no {rel} link"
    return match.group(1).replace("&amp;", "&")


# -- records -------------------------------------------------------------------------------------
def test_pages_of_fifty_by_position(alice: TestClient, jobs: Jobs) -> None:
    first = records(alice, jobs.reviews)
    assert shown(first) == list(range(50))
    assert "Showing records 1–50." in first
    assert link(first, "next") == f"/console/jobs/{jobs.reviews}/records?page=2"
    assert 'rel="prev"' not in first

    second = records(alice, jobs.reviews, "?page=2")
    assert shown(second) == list(range(50, 100))
    assert link(second, "prev") == f"/console/jobs/{jobs.reviews}/records"
    last = records(alice, jobs.reviews, "?" + link(second, "next").split("?")[1])
    assert shown(last) == list(range(100, COUNT))
    assert 'rel="next"' not in last

    assert shown(records(alice, jobs.reviews, "?offset=115")) == list(range(115, COUNT))
    assert shown(records(alice, jobs.reviews, "?page=9")) == []


def test_filter_by_status(alice: TestClient, jobs: Jobs) -> None:
    failed = records(alice, jobs.reviews, "?status=failed")
    assert shown(failed) == list(range(0, COUNT, 10))
    assert failed.count(TIMEOUT) == COUNT // 10
    assert '<option value="failed" selected>' in failed

    ok = records(alice, jobs.reviews, "?status=ok")
    assert shown(ok) == [i for i in range(COUNT) if i % 10][:50]
    assert TIMEOUT not in ok
    assert "?status=ok&amp;page=2" in ok  # the filter goes along with the pager

    assert shown(records(alice, jobs.recipe, "?status=rejected")) == [1]


def test_filter_by_label(alice: TestClient, jobs: Jobs) -> None:
    negative = [i for i in range(COUNT) if i % 3 == 1]
    assert shown(records(alice, jobs.reviews, "?label=sentiment%3Dnegative")) == negative[:50]
    assert shown(records(alice, jobs.reviews, "?label=NEGATIVE")) == negative[:50]
    three = [i for i in range(COUNT) if i % 5 + 1 == 3]
    assert shown(records(alice, jobs.reviews, "?label=stars%3D3")) == three
    both = records(alice, jobs.reviews, "?label=sentiment%3Dnegative&status=failed")
    assert shown(both) == [i for i in negative if i % 10 == 0]
    assert shown(records(alice, jobs.reviews, "?label=nobody%3Dnegative")) == []
    # Labels of the page are offered as suggestions.
    assert '<option value="sentiment=positive">' in records(alice, jobs.reviews)


def test_filter_by_failure_reason(alice: TestClient, jobs: Jobs) -> None:
    assert shown(records(alice, jobs.reviews, "?reason=TIMED+OUT")) == list(range(0, COUNT, 10))
    assert shown(records(alice, jobs.reviews, "?reason=quota")) == []
    assert shown(records(alice, jobs.recipe, "?reason=score+2")) == [1]


def test_search_text_without_case_and_by_cursor(alice: TestClient, jobs: Jobs) -> None:
    assert shown(records(alice, jobs.reviews, "?search=CR%C3%88ME+BR%C3%BBL%C3%A9e")) == [13]
    assert shown(records(alice, jobs.reviews, "?search=%22")) == []

    everything = [i for i in range(COUNT) if i % 10]  # "review" in each text but the failed
    first = records(alice, jobs.reviews, "?search=review")
    assert shown(first) == everything[:50]
    assert "Showing 50 matching records." in first
    following = link(first, "next")
    assert f"after={everything[49]}" in following and "search=review" in following
    second = records(alice, jobs.reviews, "?" + following.split("?")[1])
    assert shown(second) == everything[50:100]
    third = records(alice, jobs.reviews, "?" + link(second, "next").split("?")[1])
    assert shown(third) == everything[100:]
    assert "First page" in third


def test_provenance_is_shown(alice: TestClient, jobs: Jobs) -> None:
    html = records(alice, jobs.reviews, "?offset=21")
    record = html[html.index('id="record-21"') : html.index('id="record-22"')]
    assert "<summary>Provenance of record 21</summary>" in record
    for expected in (
        "fake-fast · seed 1021 · 61 + 20 tokens · 0.125 s · $0.000125",  # the record's line
        "&#34;template_id&#34;: &#34;product-review&#34;",  # its provenance in full
        "&#34;max_tokens&#34;: 64",
        "&#34;finish_reason&#34;: &#34;stop&#34;",
    ):
        assert expected in record, expected

    recipe = records(alice, jobs.recipe)
    assert "<caption>Cells of record 0</caption>" in recipe
    for column, model in (("question", "fake-fast"), ("answer", "fake-slow")):
        assert f'<th scope="row"><code>{column}</code></th><td><code>{model}</code></td>' in recipe
    assert "What is the capital of France?" in recipe  # the record's data
    assert "Rejected:</strong> filter quality: score 2 is below 3" in recipe


def test_text_is_escaped_and_long_text_folded(alice: TestClient, jobs: Jobs) -> None:
    html = records(alice, jobs.reviews)
    assert ESCAPED in html and SCRIPT not in html
    assert re.findall(r"<script\b[^>]*>", html) == [
        tag for tag in re.findall(r"<script\b[^>]*>", html) if 'src="/console/static/' in tag
    ]
    assert "style=" not in html
    assert f"<summary>Full text ({len(LONG)} characters)</summary>" in html


def test_htmx_gets_the_fragment(alice: TestClient, jobs: Jobs) -> None:
    answer = alice.get(
        f"/console/jobs/{jobs.reviews}/records?page=2", headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200
    assert "<html" not in answer.text and answer.text.count('id="viewer"') == 1
    assert 'id="records-status" hx-swap-oob="innerHTML">Showing records 51–100.' in answer.text
    assert shown(answer.text) == list(range(50, 100))
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "<html" in alice.get(f"/console/jobs/{jobs.reviews}/records", headers=restore).text


def test_jobs_without_records_in_the_database(alice: TestClient, jobs: Jobs) -> None:
    assert "No records are stored for this job yet" in records(alice, jobs.empty)
    html = records(alice, jobs.from_file)
    assert shown(html) == [1, 2, 3] and "From the file 2" in html
    assert "Read from the job's result file" in html
    assert shown(records(alice, jobs.from_file, "?search=file+3")) == [3]
    assert shown(records(alice, jobs.from_file, "?offset=1")) == [2, 3]


def test_bad_filters_are_refused(alice: TestClient, jobs: Jobs) -> None:
    answer = alice.get(f"/console/jobs/{jobs.reviews}/records?status=great")
    assert answer.status_code == 422 and "status" in answer.text
    assert alice.get(f"/console/jobs/{jobs.reviews}/records?page=0").status_code == 422


# -- report --------------------------------------------------------------------------------------
def test_report_page(alice: TestClient, jobs: Jobs) -> None:
    answer = alice.get(f"/console/jobs/{jobs.reviews}/report")
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert ("gate passed" if jobs.report_passed else "gate FAILED") in html
    assert "<code>max_exact_duplicate_rate</code>" in html
    for section in ("Release gate", "Summary", "Plots", "Labels", "Worst examples"):
        assert f">{section}</h2>" in html, section
    plots = re.findall(
        r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" alt="([^"]+)">', html
    )
    assert "Length distribution (words per text)" in plots
    assert "Label distribution: sentiment" in plots
    assert "style=" not in html and SCRIPT not in html


def test_report_page_without_a_report(alice: TestClient, jobs: Jobs) -> None:
    html = alice.get(f"/console/jobs/{jobs.recipe}/report").text
    assert "has no validation report" in html
    assert f"textnlp jobs results {jobs.recipe}" in html and "textnlp validate" in html


# -- who may look --------------------------------------------------------------------------------
def test_another_users_job_is_not_found(api: Api, jobs: Jobs) -> None:
    bob = log_in(api, "bob")
    for path in ("records", "records?search=review", "report"):
        answer = bob.get(f"/console/jobs/{jobs.reviews}/{path}")
        assert answer.status_code == 404, path
        assert "Review" not in answer.text
    assert bob.get(f"/console/jobs/{'0' * 32}/records").status_code == 404
    admin = log_in(api, "admin")
    assert shown(records(admin, jobs.reviews))[:3] == [0, 1, 2]


def test_the_pages_need_a_session(api: Api, jobs: Jobs) -> None:
    client = TestClient(api.client.app, follow_redirects=False)
    for path in ("records", "report"):
        answer = client.get(f"/console/jobs/{jobs.reviews}/{path}")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login?next=")
