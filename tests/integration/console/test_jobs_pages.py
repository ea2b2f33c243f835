"""The console's jobs pages on a real app (TestClient, SQLite) with fake models and an
in-process worker (``tests.support.platform.run_worker``), as the API's job tests run them.

Each user is a browser of their own (a client with its own cookies) that logs in through the
console's form; the API's own routes (bearer tokens) are the reference the pages must agree
with.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from tests.integration.console.conftest import LOGIN_LIMITS
from tests.support.api import PASSWORD, Api, make_settings, start_api
from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import run_worker
from textnlp.api.open_sockets import OpenSockets

STATUS = "/api/v1/generate/status"
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
EVIL_TEMPLATE = f"""
id: evil-template
description: "{SCRIPT}"
user: "Write one sentence about {{{{ topic }}}}."
variables:
  topic:
    values: [tea, rain]
"""
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app with the fake models of the job tests and a user template directory."""
    register()
    home = tmp_path_factory.mktemp("console-jobs")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    templates = home / "templates"
    templates.mkdir()
    (templates / "evil-template.yaml").write_text(EVIL_TEMPLATE)
    settings = make_settings(
        home,
        models_file=models,
        templates_dir=templates,
        default_model="fake-fast",
        generation={"response_cache": False, "max_count": 1000},
        queue={"chunk_size": 4},
        api=LOGIN_LIMITS,
    )
    yield from start_api(settings)


@dataclass
class Browser:
    """One user's browser: its own cookies, redirects not followed."""

    client: TestClient
    username: str

    def csrf(self, path: str = "/console/jobs") -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        return form_value(page.text, "csrf_token")

    def submit(self, **fields: str) -> Any:
        """POST the submit form as the jobs page renders it, with ``fields`` changed."""
        page = self.client.get("/console/jobs")
        form = {
            "csrf_token": form_value(page.text, "csrf_token"),
            "idempotency_key": form_value(page.text, "idempotency_key"),
            "template": "qa-pairs",
            "count": "12",
            "model": "fake-fast",
            "format": "jsonl",
            "seed": "0",
            **fields,
        }
        return self.client.post("/console/jobs", data=form)

    def submitted(self, **fields: str) -> str:
        """The id of a job submitted through the form."""
        answer = self.submit(**fields)
        assert answer.status_code == 303, answer.text
        match = re.fullmatch(r"/console/jobs/([0-9a-f]{32})", answer.headers["location"])
        assert match is not None, answer.headers["location"]
        return match.group(1)


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None, f"no field {name}"
    return match.group(1)


def log_in(api: Api, username: str) -> Browser:
    client = TestClient(api.client.app, raise_server_exceptions=False, follow_redirects=False)
    client.portal = api.client.portal  # the app's one event loop, as a server has
    login = client.get("/console/login")
    token = form_value(login.text, "csrf_token")
    answer = client.post(
        "/console/login",
        data={
            "csrf_token": token,
            "username": username,
            "password": PASSWORD,
            "next": "/console/jobs",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/jobs"
    return Browser(client, username)


@pytest.fixture(scope="module")
def alice(api: Api) -> Browser:
    return log_in(api, "alice")


@pytest.fixture(scope="module")
def bob(api: Api) -> Browser:
    return log_in(api, "bob")


def api_status(api: Api, job_id: str, username: str = "alice") -> dict[str, Any]:
    answer = api.client.get(f"{STATUS}/{job_id}", headers=api.headers(username))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def api_jobs(api: Api, username: str) -> list[dict[str, Any]]:
    answer = api.client.get("/api/v1/generate/batch?limit=500", headers=api.headers(username))
    jobs: list[dict[str, Any]] = answer.json()
    return jobs


def sse(client: TestClient, url: str) -> Any:
    """httpx-sse's event source on the test client (an httpx2 client, which it drives as it
    drives an httpx one)."""
    return connect_sse(cast(Any, client), "GET", url)


def events(browser: Browser, url: str, count: int | None = None) -> list[dict[str, Any]]:
    """The stream's progress events: until it ends, or the first ``count``."""
    seen: list[dict[str, Any]] = []
    with sse(browser.client, url) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for event in source.iter_sse():
            assert event.event == "progress"
            seen.append(json.loads(event.data))
            if count is not None and len(seen) == count:
                break
    return seen


# -- tests ---------------------------------------------------------------------------------------
def test_the_jobs_page_needs_a_session(api: Api) -> None:
    client = TestClient(api.client.app, follow_redirects=False)
    for path in ("/console/jobs", "/console/jobs/events", f"/console/jobs/{'0' * 32}"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next=")


def test_the_form_offers_the_catalogue(api: Api, alice: Browser) -> None:
    page = alice.client.get("/console/jobs")
    assert page.status_code == 200
    html = page.text
    for source in ("qa-pairs", "product-review", "persona-qa", "magpie", "evil-template"):
        assert f'<option value="{source}"' in html, source
    assert '<option value="fake-fast" selected>' in html
    for fmt in ("jsonl", "csv", "parquet"):
        assert f'<option value="{fmt}"' in html
    for field in ("count", "max_tokens", "temperature", "top_p", "seed", "max_cost_usd"):
        assert f'name="{field}"' in html, field
    assert 'src="/console/static/jobs.js"' in html and "<script>" not in html


def test_submit_then_list_and_job_page(api: Api, alice: Browser) -> None:
    answer = alice.submit(
        template="qa-pairs",
        count="12",
        model="fake-slow",
        max_tokens="50",
        temperature="0.5",
        top_p="0.9",
        seed="7",
        format="csv",
        max_cost_usd="1.5",
        variables="difficulty=easy\n",
    )
    assert answer.status_code == 303, answer.text
    job_id = answer.headers["location"].rsplit("/", 1)[1]
    job = api_status(api, job_id)
    assert job["state"] == "queued" and job["progress"]["total"] == 12
    assert job["model"] == "fake-slow" and job["max_cost_usd"] == 1.5
    listing = alice.client.get("/console/jobs")
    assert f'data-job-id="{job_id}"' in listing.text
    page = alice.client.get(f"/console/jobs/{job_id}")
    assert page.status_code == 200
    shown = html.unescape(page.text)
    for text in ("queued", "fake-slow", '"temperature": 0.5', '"format": "csv"', '"seed": 7'):
        assert text in shown, text
    assert f'action="/console/jobs/{job_id}/cancel"' in page.text
    assert f'href="/console/jobs/{job_id}/records"' in page.text
    assert f'href="/console/jobs/{job_id}/report"' in page.text
    assert f'data-job-events="/console/jobs/events?job={job_id}"' in page.text


def test_a_recipe_is_submitted_as_a_template_is(api: Api, alice: Browser) -> None:
    job_id = alice.submitted(template="product-reviews", count="3")
    assert api_status(api, job_id)["progress"]["total"] == 3
    spec = html.unescape(alice.client.get(f"/console/jobs/{job_id}").text)
    assert '"template": "product-reviews"' in spec
    cancelled = alice.client.post(
        f"/console/jobs/{job_id}/cancel", data={"csrf_token": alice.csrf()}
    )
    assert cancelled.status_code == 303  # (the other tests' workers need not run it)


def test_a_whole_number_as_a_number_input_sends_it_is_taken(api: Api, alice: Browser) -> None:
    # "1e3" is valid in a type=number input with step="1" (an integer): it was refused with
    # "count: Input should be a valid integer, unable to parse string as an integer".
    page = alice.client.get("/console/jobs").text
    for field in ("count", "seed", "max_tokens"):
        tag = re.search(rf'<input [^>]*name="{field}"[^>]*>', page)
        assert tag is not None and 'step="1"' in tag[0], field
    job_id = alice.submitted(template="product-reviews", count="2e0", seed="7.0", max_tokens="1e1")
    job = api_status(api, job_id)
    assert job["progress"]["total"] == 2
    spec = html.unescape(alice.client.get(f"/console/jobs/{job_id}").text)
    assert '"seed": 7' in spec and '"max_tokens": 10' in spec
    cancelled = alice.client.post(
        f"/console/jobs/{job_id}/cancel", data={"csrf_token": alice.csrf()}
    )
    assert cancelled.status_code == 303  # (the other tests' workers need not run it)


def test_variables_are_counted_as_the_browser_counts_them(api: Api, alice: Browser) -> None:
    # A form sends each line break as CRLF: a box the browser held to its maxlength of 20,000
    # was over the server's 20,000 and a bare 422 page, the form lost.
    page = alice.client.get("/console/jobs").text
    assert 'maxlength="20000"' in page
    lines = "difficulty=easy\r\n" * 1200  # 16 characters a line in the browser: 19,200
    assert len(lines) > 20_000 >= len(lines.replace("\r\n", "\n"))
    job_id = alice.submitted(count="2", variables=lines)
    cancelled = alice.client.post(
        f"/console/jobs/{job_id}/cancel", data={"csrf_token": alice.csrf()}
    )
    assert cancelled.status_code == 303
    too_long = alice.submit(count="2", variables="x=" + "y" * 20_000)
    assert too_long.status_code == 422
    assert "The job was not submitted" in too_long.text and "at most 20,000" in too_long.text
    assert 'id="job-variables"' in too_long.text


def test_the_validate_box_asks_for_the_default_release_gate(api: Api, alice: Browser) -> None:
    gated = alice.submitted(template="product-reviews", count="2", gate="on")
    plain = alice.submitted(template="product-reviews", count="2")
    shown = html.unescape(alice.client.get(f"/console/jobs/{gated}").text)
    assert '"validation": {}' in shown  # the gate's defaults (only what was set is stored)
    assert '"validation"' not in html.unescape(alice.client.get(f"/console/jobs/{plain}").text)
    for job_id in (gated, plain):  # (the other tests' workers need not run them)
        cancel = alice.client.post(
            f"/console/jobs/{job_id}/cancel", data={"csrf_token": alice.csrf()}
        )
        assert cancel.status_code == 303


def test_a_form_sent_twice_makes_one_job(api: Api, alice: Browser) -> None:
    page = alice.client.get("/console/jobs")
    form = {
        "csrf_token": form_value(page.text, "csrf_token"),
        "idempotency_key": form_value(page.text, "idempotency_key"),
        "template": "qa-pairs",
        "count": "3",
        "model": "fake-fast",
    }
    first = alice.client.post("/console/jobs", data=form)
    again = alice.client.post("/console/jobs", data=form)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"count": "0"}, "count: Input should be greater than or equal to 1"),
        ({"count": "many"}, "count: Input should be a valid integer"),
        ({"count": "2.5"}, "count: Input should be a valid integer"),
        ({"model": "nope"}, "nope"),
        ({"template": "nope"}, "unknown template or recipe"),
        ({"template": ""}, "give exactly one of template"),
        ({"temperature": "3"}, "temperature: Input should be less than or equal to 2"),
        ({"format": "xml"}, "format: Input should be"),
        ({"count": "5000"}, "above the maximum of 1000"),
        ({"variables": "no equals sign"}, "variables, line 1"),
    ],
)
def test_a_bad_field_shows_its_message_and_submits_nothing(
    api: Api, alice: Browser, fields: dict[str, str], message: str
) -> None:
    before = len(api_jobs(api, "alice"))
    answer = alice.submit(**fields)
    assert answer.status_code == 422, answer.text
    assert 'role="alert"' in answer.text and "The job was not submitted" in answer.text
    assert message in html.unescape(answer.text), answer.text
    assert len(api_jobs(api, "alice")) == before


@pytest.mark.timeout(180)
def test_progress_events_follow_a_job_to_100_percent(api: Api, alice: Browser) -> None:
    job_id = alice.submitted(model="fake-crawl", count="24")
    worker = threading.Thread(target=run_worker, args=(api.settings,))
    seen: list[dict[str, Any]] = []
    with sse(alice.client, f"/console/jobs/events?job={job_id}") as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for event in source.iter_sse():
            assert event.event == "progress"
            seen.append(json.loads(event.data))
            if len(seen) == 1:
                worker.start()  # the job moves only once the stream has seen it queued
    # One job's stream ends by itself once the job has ended.
    worker.join()
    first, last = seen[0], seen[-1]
    assert first == {
        "id": job_id,
        "state": "queued",
        "done": 0,
        "total": 24,
        "failed": 0,
        "percent": 0,
        "error": None,
        "result_format": None,
        "settled": False,
    }
    assert last["state"] == "succeeded" and last["done"] == 24 and last["percent"] == 100
    assert last["result_format"] == "jsonl" and last["settled"] is True
    assert [e["done"] for e in seen] == sorted(e["done"] for e in seen)
    assert len({(e["state"], e["done"]) for e in seen}) == len(seen)  # changes only
    assert all(e["id"] == job_id for e in seen)
    # The list's stream: every job of the user once, this one at 100 %; it goes on until
    # the client leaves (here, after the first events).
    mine = api_jobs(api, "alice")
    listed = events(alice, "/console/jobs/events", count=len(mine))
    assert {e["id"] for e in listed} == {job["id"] for job in mine}
    assert next(e for e in listed if e["id"] == job_id)["percent"] == 100


def finished_job(api: Api, browser: Browser) -> str:
    job_id = browser.submitted(count="6", format="jsonl")
    run_worker(api.settings)
    assert api_status(api, job_id, browser.username)["state"] == "succeeded"
    return job_id


def test_download_equals_the_apis_results(api: Api, alice: Browser) -> None:
    job_id = finished_job(api, alice)
    page = alice.client.get(f"/console/jobs/{job_id}")
    assert "succeeded" in page.text and f'href="/console/jobs/{job_id}/download"' in page.text
    download = alice.client.get(f"/console/jobs/{job_id}/download")
    reference = api.client.get(f"{STATUS}/{job_id}/results", headers=api.headers("alice"))
    assert download.status_code == reference.status_code == 200
    assert download.content == reference.content and len(download.content.splitlines()) == 6
    assert download.headers["content-type"] == reference.headers["content-type"]
    assert download.headers["content-disposition"] == f'attachment; filename="{job_id}.jsonl"'
    # Nothing to download yet (or ever): the message, with the API's 409.
    queued = alice.submitted(count="2")
    early = alice.client.get(f"/console/jobs/{queued}/download")
    assert early.status_code == 409 and "results are ready when it has ended" in early.text


def test_an_ended_jobs_page_listens_until_its_worker_lets_it_go(
    api: Api, alice: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancelled or failed job's kept records are published after its state changed: its
    page's stream goes on until its worker settles it, and then says so (it gave up after a
    minute, before a slow chunk was stored: the page showed no file until a reload)."""
    from tests.support.records import stored_record
    from textnlp.worker.runner import JobRunner

    monkeypatch.setattr("textnlp.api.console.pages.jobs.POLL_S", 0.05)
    platform = api.client.app.state.platform  # type: ignore[attr-defined]
    job_id = alice.submitted(count="6")
    assert platform.job_runs.start_attempt(job_id, "w1") is not None  # a worker holds it
    cancel = api.client.post(f"{STATUS}/{job_id}/cancel", headers=api.headers("alice"))
    assert cancel.status_code == 200 and cancel.json()["state"] == "cancelled"
    url = f"/console/jobs/events?job={job_id}"
    [waiting] = events(alice, url, count=1)
    assert (waiting["state"], waiting["settled"], waiting["result_format"]) == (
        "cancelled",
        False,
        None,
    )
    platform.job_runs.save_chunk(job_id, [stored_record(i, "ok") for i in range(4)])
    JobRunner(platform.job_runs, platform.generation, chunk_size=8).settle(job_id)
    ended = events(alice, url)  # the stream ends by itself
    assert (ended[-1]["settled"], ended[-1]["result_format"], ended[-1]["done"]) == (
        True,
        "jsonl",
        4,
    )
    page = alice.client.get(f"/console/jobs/{job_id}")
    assert 'data-field="download">Download results (jsonl)</a>' in page.text
    # A job no worker holds has nothing more to come: its stream ends at once.
    queued = alice.submitted(count="2")
    api.client.post(f"{STATUS}/{queued}/cancel", headers=api.headers("alice"))
    assert [e["settled"] for e in events(alice, f"/console/jobs/events?job={queued}")] == [True]


def test_a_page_stops_waiting_for_a_worker_that_died() -> None:
    from datetime import UTC, datetime

    from textnlp.api.console.pages.jobs import SETTLE_WAIT_S, _waited_out
    from textnlp.services.job_models import JobProgress, JobTimings, JobView

    view = JobView(
        id="0" * 32,
        owner_id="u",
        state="cancelled",
        progress=JobProgress(done=0, total=1, failed=0),
        timings=JobTimings(created_at=datetime.now(UTC)),
        model="m",
        queue="q",
        attempts=1,
    )
    assert not _waited_out(view, 60) and _waited_out(view, SETTLE_WAIT_S + 1)
    assert not _waited_out(view.model_copy(update={"state": "running"}), 3600)


def test_cancel_needs_the_csrf_token(api: Api, alice: Browser) -> None:
    job_id = alice.submitted(count="4")
    cancel = f"/console/jobs/{job_id}/cancel"
    assert alice.client.post(cancel).status_code == 403
    assert alice.client.post(cancel, data={"csrf_token": "forged"}).status_code == 403
    forged = alice.client.post(cancel, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    assert api_status(api, job_id)["state"] == "queued"
    done = alice.client.post(cancel, data={"csrf_token": alice.csrf()})
    assert done.status_code == 303 and done.headers["location"] == f"/console/jobs/{job_id}"
    assert api_status(api, job_id)["state"] == "cancelled"
    page = alice.client.get(f"/console/jobs/{job_id}")
    assert "cancelled by the user" not in page.text  # a cancelled job has no error to show
    assert re.search(
        r'<form method="post" action="[^"]+/cancel" data-when="active" hidden>', page.text
    )
    # A job that has ended cannot be cancelled: the service's 409 as an error page.
    succeeded = finished_job(api, alice)
    late = alice.client.post(f"/console/jobs/{succeeded}/cancel", data={"csrf_token": alice.csrf()})
    assert late.status_code == 409 and "only queued or running jobs" in late.text


def test_another_users_job_does_not_exist_for_them(api: Api, alice: Browser, bob: Browser) -> None:
    older = bob.submitted(count="2")
    job_id = finished_job(api, alice)
    newer = bob.submitted(count="2")
    token = bob.csrf()
    for answer in (
        bob.client.get(f"/console/jobs/{job_id}"),
        bob.client.get(f"/console/jobs/{job_id}/download"),
        bob.client.get(f"/console/jobs/events?job={job_id}"),
        bob.client.post(f"/console/jobs/{job_id}/cancel", data={"csrf_token": token}),
    ):
        assert answer.status_code == 404, answer.request.url
        assert f"no job &#39;{job_id}&#39;" in answer.text
    queued = alice.submitted(count="2")
    refused = bob.client.post(f"/console/jobs/{queued}/cancel", data={"csrf_token": token})
    assert refused.status_code == 404 and api_status(api, queued)["state"] == "queued"
    listing = bob.client.get("/console/jobs").text
    assert job_id not in listing and queued not in listing and newer in listing
    # Newest first: were alice's jobs in bob's stream, hers would come between his two.
    streamed = events(bob, "/console/jobs/events", count=2)
    assert [e["id"] for e in streamed] == [newer, older]
    # An admin sees everyone's jobs, as in the API, each with its owner's name.
    admin = log_in(api, "admin")
    assert admin.client.get(f"/console/jobs/{job_id}").status_code == 200
    for path in ("/console/jobs", "/console/jobs/rows"):
        html = admin.client.get(path).text
        assert '<th scope="col">Owner</th>' in html or "<tbody" not in html
        rows = {
            m.group(1): m.group(0)
            for m in re.finditer(r'<tr data-job-id="([0-9a-f]+)".*?</tr>', html, re.S)
        }
        assert "<td>alice</td>" in rows[job_id] and "<td>bob</td>" in rows[newer]
    assert "<td>alice</td>" not in bob.client.get("/console/jobs").text  # his own: no column
    alice_id = api_status(api, job_id)["owner_id"]
    assert alice_id and api_status(api, newer, "bob")["owner_id"] != alice_id


def test_a_failed_job_shows_its_error_and_dead_letter_reason(api: Api, alice: Browser) -> None:
    job_id = alice.submitted(model="poison", count="3")
    run_worker(api.settings)
    job = api_status(api, job_id)
    assert job["state"] == "failed"
    page = alice.client.get(f"/console/jobs/{job_id}")
    assert "Why it failed" in page.text and "internal error (RuntimeError)" in page.text
    assert "dead-letter queue" in page.text
    assert 'data-field="download" hidden' in page.text  # nothing to download
    assert events(alice, f"/console/jobs/events?job={job_id}")[-1]["error"] == job["error"]


def test_user_content_renders_escaped(api: Api, alice: Browser) -> None:
    listing = alice.client.get("/console/jobs")
    assert SCRIPT not in listing.text and ESCAPED in listing.text  # the template's description
    job_id = alice.submitted(template="evil-template", count="2", variables=f"topic={SCRIPT}")
    page = alice.client.get(f"/console/jobs/{job_id}")
    assert SCRIPT not in page.text and ESCAPED in page.text  # the spec's variable
    bad_model = alice.submit(model=SCRIPT)
    assert bad_model.status_code == 422
    assert SCRIPT not in bad_model.text and ESCAPED in bad_model.text  # the error message
    assert bad_model.headers["content-security-policy"].startswith("default-src 'none'")


def test_static_script_is_served(api: Api) -> None:
    script = TestClient(api.client.app).get("/console/static/jobs.js")
    assert script.status_code == 200 and "EventSource" in script.text


def test_template_paths_are_not_accepted(api: Api, alice: Browser, tmp_path: Path) -> None:
    """The form names catalogue ids only, as the API: a path would read the server's files."""
    path = tmp_path / "t.yaml"
    path.write_text(EVIL_TEMPLATE)
    answer = alice.submit(template=str(path))
    assert answer.status_code == 422 and "template: String should match pattern" in answer.text


def test_an_admin_made_a_user_stops_hearing_of_others_jobs(
    api: Api, alice: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream of the jobs list checks the session as the API's streams check a credential:
    a demoted admin's open stream ends (it went on with every user's jobs)."""
    monkeypatch.setattr("textnlp.api.console.pages.jobs.SESSION_CHECK_S", 0.0)
    monkeypatch.setattr("textnlp.api.console.pages.jobs.POLL_S", 0.05)
    auth = api.client.app.state.auth  # type: ignore[attr-defined]
    auth.create_user("demoted", PASSWORD, "admin")
    admin = log_in(api, "demoted")
    alice.submitted(count="2")
    heard: list[str] = []
    with sse(admin.client, "/console/jobs/events") as source:
        for event in source.iter_sse():
            heard.append(json.loads(event.data)["id"])
            if len(heard) == 1:
                auth.set_role("demoted", "user")
                later = alice.submitted(count="2")  # hers, after the demotion
            elif heard[-1] == later:
                break
    assert later not in heard


def test_one_user_holds_a_bounded_number_of_job_streams(
    api: Api, alice: Browser, bob: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jobs list's stream lasts as long as its page: one user's open streams must not
    take every request the server serves at once (it had no bound)."""
    state = api.client.app.state  # type: ignore[attr-defined]
    monkeypatch.setattr(state, "open_event_streams", OpenSockets(2, "job event streams"))
    alice.submitted(count="2")
    with (
        sse(alice.client, "/console/jobs/events") as first,
        sse(alice.client, "/console/jobs/events") as second,
    ):
        assert first.response.status_code == second.response.status_code == 200
        with sse(alice.client, "/console/jobs/events") as third:
            assert third.response.status_code == 429
            assert "2 job event streams" in third.response.read().decode()
        with sse(bob.client, "/console/jobs/events") as others:  # another user's bound
            assert others.response.status_code == 200
    # Closed, each stream gave its place back.
    assert len(events(alice, "/console/jobs/events", count=1)) == 1


def test_an_ended_job_is_deleted_from_its_page(api: Api, alice: Browser, bob: Browser) -> None:
    job_id = finished_job(api, alice)
    action = f'action="/console/jobs/{job_id}/delete" data-when="ended">'
    assert action in alice.client.get(f"/console/jobs/{job_id}").text  # shown: it has ended
    other = bob.client.post(f"/console/jobs/{job_id}/delete", data={"csrf_token": bob.csrf()})
    assert other.status_code == 404 and api_status(api, job_id)["state"] == "succeeded"
    queued = alice.submitted(count="2")
    page = alice.client.get(f"/console/jobs/{queued}").text
    assert f'action="/console/jobs/{queued}/delete" data-when="ended" hidden>' in page
    token = alice.csrf()
    running = alice.client.post(f"/console/jobs/{queued}/delete", data={"csrf_token": token})
    assert running.status_code == 409 and "cancel it first" in running.text
    assert api_status(api, queued)["state"] == "queued"
    no_token = alice.client.post(f"/console/jobs/{job_id}/delete")
    assert no_token.status_code == 403 and api_status(api, job_id)["state"] == "succeeded"

    deleted = alice.client.post(f"/console/jobs/{job_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("/console/jobs")
    assert alice.client.get(f"/console/jobs/{job_id}").status_code == 404
    gone = api.client.get(f"{STATUS}/{job_id}", headers=api.headers("alice"))
    assert gone.status_code == 404
    assert f'data-job-id="{job_id}"' not in alice.client.get("/console/jobs").text
    cancel = alice.client.post(f"/console/jobs/{queued}/cancel", data={"csrf_token": token})
    assert cancel.status_code == 303  # (the other tests' workers need not run it)
