"""Job webhooks against real HTTP servers on loopback: the egress policy at submit and send.

Loopback is a private target, so delivery tests turn on ``queue.webhook_allow_private`` (as a
self-hosted setup would); the refusals run with the default policy. Rebinding is played by a
resolver that answers differently at submit and at send.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from tests.support.api import Api, start_api_with_models
from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import job_service, run_worker
from textnlp.config import Settings, load_settings
from textnlp.errors import InvalidInput
from textnlp.services.job_models import (
    JobMessage,
    JobProgress,
    JobSpec,
    JobTimings,
    JobView,
    Owner,
)
from textnlp.worker.notify import Notifier

ALICE = Owner(id="alice")


@dataclass
class Receiver:
    """A webhook receiver: records each request, answers ``status`` (and ``location``)."""

    status: int = 200
    location: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Called on each request, before the answer.
    on_request: Callable[[], None] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Call ``start(receiver)`` through ``receivers``; every server stops at the end."""
    servers: list[ThreadingHTTPServer] = []
    started: list[Receiver] = []

    def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                receiver.requests.append(
                    {
                        "path": self.path,
                        "host": self.headers.get("Host"),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "raw": raw,
                        "body": json.loads(raw or b"null"),
                    }
                )
                if receiver.on_request is not None:
                    receiver.on_request()
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    class Starter(list[Receiver]):
        def start(self, receiver: Receiver) -> Receiver:
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(receiver))
            receiver.port = server.server_address[1]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            started.append(receiver)
            return receiver

    yield Starter()
    for server in servers:
        server.shutdown()
        server.server_close()


def settings_for(tmp_path: Path, *, allow_private: bool) -> Settings:
    register()
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    return load_settings(
        home=tmp_path / "home",
        models_file=models,
        generation={"response_cache": False},
        queue={"webhook_allow_private": allow_private},
    )


def finished_job(job_id: str = "0" * 32) -> JobView:
    now = datetime.now(UTC)
    return JobView(
        id=job_id,
        owner_id="u-1",
        state="succeeded",
        progress=JobProgress(done=1, total=1),
        timings=JobTimings(created_at=now),
        model="fake-fast",
        queue="generation",
        attempts=1,
    )


def test_a_finished_job_is_posted_to_its_webhook(tmp_path: Path, receivers: Any) -> None:
    receiver = receivers.start(Receiver())
    settings = settings_for(tmp_path, allow_private=True)
    spec = JobSpec(template="qa-pairs", count=3, model="fake-fast", webhook_url=receiver.url)
    with job_service(settings) as jobs:
        view = jobs.submit(ALICE, spec)
    run_worker(settings)
    assert len(receiver.requests) == 1
    notice = receiver.requests[0]
    assert notice["path"] == "/hook" and notice["body"]["event"] == "job.succeeded"
    assert notice["body"]["job"]["id"] == view.id
    # Local storage has no presigned URL: the notice links the API's results route, as
    # ``jobs status`` shows it (it said null).
    assert notice["body"]["job"]["result"]["url"] == f"/api/v1/generate/status/{view.id}/results"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
    ],
)
def test_private_webhooks_are_refused_at_submit(tmp_path: Path, url: str) -> None:
    with (
        job_service(settings_for(tmp_path, allow_private=False)) as jobs,
        pytest.raises(InvalidInput, match="public address"),
    ):
        jobs.submit(
            ALICE, JobSpec(template="qa-pairs", count=1, model="fake-fast", webhook_url=url)
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from start_api_with_models(tmp_path_factory.mktemp("webhook-api"), MODELS_YAML)


def test_a_notices_results_link_is_the_apis_route(api: Api) -> None:
    """``deployment.JOB_RESULTS_PATH`` (what a notice links) against the app's own route."""
    from textnlp.deployment import JOB_RESULTS_PATH

    app: Any = api.client.app
    linked = str(app.url_path_for("job_results", job_id="0" * 32))
    assert linked == JOB_RESULTS_PATH.format(job_id="0" * 32)


def test_the_api_answers_422_for_a_private_webhook(api: Api) -> None:
    body = {"template": "qa-pairs", "count": 1, "model": "fake-fast"}
    for url in ("http://169.254.169.254/", "http://127.1:8080/x", "https://u:pw@example.com/"):
        answer = api.client.post(
            "/api/v1/generate/batch",
            json={**body, "webhook_url": url},
            headers=api.headers("alice"),
        )
        assert answer.status_code == 422, answer.text
        assert "webhook" in answer.json()["error"]["message"]


def test_a_local_receiver_is_refused_at_send_by_default(
    tmp_path: Path, receivers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = receivers.start(Receiver())
    notifier = Notifier(settings_for(tmp_path, allow_private=False), attempts=1)
    with caplog.at_level(logging.WARNING, logger="textnlp.worker.notify"):
        notifier.notify(finished_job(), receiver.url)
    assert receiver.requests == []
    assert "not a public address" in caplog.text


def test_a_rebound_name_is_refused_at_send(
    tmp_path: Path, receivers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Public when the job was submitted, loopback when the notice goes out."""
    receiver = receivers.start(Receiver())
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    settings = settings_for(tmp_path, allow_private=False)
    url = f"http://rebind.example:{receiver.port}/hook"
    notifier = Notifier(settings, attempts=1, resolver=lambda host, port: next(answers))
    assert notifier.egress.check(url).addresses == ("93.184.216.34",)  # as at submit
    with caplog.at_level(logging.WARNING, logger="textnlp.worker.notify"):
        notifier.notify(finished_job(), url)
    assert receiver.requests == []
    assert "resolves to 127.0.0.1" in caplog.text


def test_the_notice_goes_to_the_checked_address_with_one_lookup(
    tmp_path: Path, receivers: Any
) -> None:
    """The name is resolved once, by the policy; the connection uses that address (a name of
    ``.example`` resolves nowhere, so a second lookup would fail the delivery)."""
    receiver = receivers.start(Receiver())
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    notifier = Notifier(settings_for(tmp_path, allow_private=True), resolver=resolver)
    notifier.notify(finished_job(), f"http://hooks.example:{receiver.port}/hook?sig=1")
    assert lookups == ["hooks.example"]
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["host"] == f"hooks.example:{receiver.port}"
    assert receiver.requests[0]["path"] == "/hook?sig=1"


def test_redirects_are_not_followed(tmp_path: Path, receivers: Any) -> None:
    target = receivers.start(Receiver())
    redirector = receivers.start(Receiver(status=307, location=target.url))
    notifier = Notifier(settings_for(tmp_path, allow_private=True))
    notifier.notify(finished_job(), redirector.url)
    assert len(redirector.requests) == 1  # a redirect is an answer: no retry, no follow
    assert target.requests == []


def test_a_failing_receiver_is_retried_and_logged_without_secrets(
    tmp_path: Path,
    receivers: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("textnlp.worker.notify.time.sleep", lambda s: None)
    receiver = receivers.start(Receiver(status=503))
    notifier = Notifier(settings_for(tmp_path, allow_private=True), attempts=3)
    with caplog.at_level(logging.WARNING, logger="textnlp.worker.notify"):
        notifier.notify(finished_job(), f"{receiver.url}/s3cr3t-path?token=s3cr3t-query")
    assert len(receiver.requests) == 3
    assert f"http://127.0.0.1:{receiver.port}" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_a_webhook_with_credentials_is_never_sent_nor_logged(
    tmp_path: Path, receivers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = receivers.start(Receiver())
    notifier = Notifier(settings_for(tmp_path, allow_private=True), attempts=1)
    with caplog.at_level(logging.WARNING, logger="textnlp.worker.notify"):
        notifier.notify(finished_job(), f"http://user:hunter2@127.0.0.1:{receiver.port}/hook")
    assert receiver.requests == []
    assert "credentials" in caplog.text and "hunter2" not in caplog.text


@dataclass
class RawReceiver:
    """A receiver written on a socket: ``answer`` bytes, then ``trickle`` one byte at a time
    every ``pause_s``; ``sent`` counts what went out before the worker hung up, ``whole`` says
    whether all of it did."""

    answer: bytes
    trickle: bytes = b""
    pause_s: float = 0.0
    sent: int = 0
    whole: bool = False
    port: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> RawReceiver:
        server = socket.create_server(("127.0.0.1", 0))
        self.port = server.getsockname()[1]
        threading.Thread(target=self._serve, args=(server,), daemon=True).start()
        return self

    def _serve(self, server: socket.socket) -> None:
        with server:
            connection, _ = server.accept()
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(self.answer)
                self.sent = len(self.answer)
                for i in range(len(self.trickle)):
                    time.sleep(self.pause_s)
                    connection.sendall(self.trickle[i : i + 1])
                    self.sent += 1
                self.whole = True
            except OSError:
                pass  # the worker hung up
            finally:
                self.done.set()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx's timeouts bound each read: one header byte at a time, each well within the read
    timeout, held the worker for as long as the receiver liked."""
    monkeypatch.setattr("textnlp.worker.notify.TIMEOUT_S", 0.5)
    receiver = RawReceiver(answer=b"HTTP/1.1 200 OK\r\n", trickle=b"X" * 100, pause_s=0.1)
    receiver.start()
    notifier = Notifier(settings_for(tmp_path, allow_private=True), attempts=1)
    notifier.notify(finished_job(), f"http://127.0.0.1:{receiver.port}/hook")
    assert receiver.done.wait(30)
    assert not receiver.whole  # the worker hung up before the receiver was done


def test_the_answers_body_is_not_read(tmp_path: Path) -> None:
    """Only the status counts: a receiver's endless body must not fill the worker's memory."""
    size = 64 * 1024 * 1024
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode()
    receiver = RawReceiver(answer=head + bytes(size))
    receiver.start()
    notifier = Notifier(settings_for(tmp_path, allow_private=True), attempts=1)
    notifier.notify(finished_job(), f"http://127.0.0.1:{receiver.port}/hook")
    assert receiver.done.wait(30)
    assert not receiver.whole


def test_a_job_deleted_while_its_notice_is_retried_is_not_told_of_again(
    tmp_path: Path, receivers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver fails the first attempt, and the job is deleted meanwhile: the retries do
    not send the deleted job's data again."""
    monkeypatch.setattr("textnlp.worker.notify.time.sleep", lambda s: None)
    receiver = receivers.start(Receiver(status=503))
    settings = settings_for(tmp_path, allow_private=True)
    spec = JobSpec(template="qa-pairs", count=2, model="fake-fast", webhook_url=receiver.url)
    with job_service(settings) as jobs:
        view = jobs.submit(ALICE, spec)
        receiver.on_request = lambda: jobs.delete(ALICE, view.id)
        run_worker(settings)
        assert jobs.store.get(view.id) is None
    assert len(receiver.requests) == 1


def test_a_job_cancelled_while_queued_is_told_once(tmp_path: Path, receivers: Any) -> None:
    """No attempt saw the cancel, so the worker that receives the job's message tells it; a
    duplicate delivery of that message tells it no second time."""
    receiver = receivers.start(Receiver())
    settings = settings_for(tmp_path, allow_private=True)
    spec = JobSpec(template="qa-pairs", count=2, model="fake-fast", webhook_url=receiver.url)
    with job_service(settings) as jobs:
        view = jobs.submit(ALICE, spec)
        jobs.cancel(ALICE, view.id)
        run_worker(settings)
        again = JobMessage(job_id=view.id).model_dump_json()
        jobs.queues.by_name(view.queue).send(again, group_id=view.id, dedup_id=uuid.uuid4().hex)
        run_worker(settings)
    assert [r["body"]["event"] for r in receiver.requests] == ["job.cancelled"]
    assert receiver.requests[0]["body"]["job"]["id"] == view.id


def test_a_notice_is_signed_with_the_jobs_secret(tmp_path: Path, receivers: Any) -> None:
    """The receiver checks the notice with the Standard Webhooks library (``Webhook.verify``,
    what their receivers run) and with the README's verifier; the secret is never shown again
    (the job's spec, as the console prints it)."""
    receiver = receivers.start(Receiver())
    settings = settings_for(tmp_path, allow_private=True)
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    spec = JobSpec(
        template="qa-pairs",
        count=2,
        model="fake-fast",
        webhook_url=receiver.url,
        webhook_secret=secret,
    )
    with job_service(settings) as jobs:
        view = jobs.submit(ALICE, spec)
        run_worker(settings)
        shown = jobs.spec(ALICE, view.id)
        stored = jobs.store.get(view.id)
    assert "webhook_secret" not in shown and secret not in json.dumps(shown)
    # Its one notice sent, the secret is not kept at rest (the table's backups, snapshots).
    assert stored is not None and "webhook_secret" not in stored.spec
    [notice] = receiver.requests
    headers = notice["headers"]
    assert headers["webhook-id"] == view.id
    verified = standardwebhooks.Webhook(secret).verify(notice["raw"], headers)
    assert verified["event"] == "job.succeeded"
    assert readme_verify(secret, headers, notice["raw"])
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(
            notice["raw"], headers
        )


def readme_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The README's verifier, as written there (its code block, run)."""
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    code = readme.split("```python\nimport base64, hashlib, hmac, time\n", 1)[1].split("```")[0]
    scope: dict[str, Any] = {}
    exec("import base64, hashlib, hmac, time\n" + code, scope)
    return bool(scope["verify"](secret, headers, body))


@pytest.mark.parametrize(
    "secret", ["s" * 16, "whsec_" + "k" * 26, "whsec_" + base64.b64encode(b"k" * 8).decode()]
)
def test_a_webhook_secret_is_a_standard_webhooks_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        JobSpec(
            template="qa-pairs", count=1, webhook_url="https://example.com/h", webhook_secret=secret
        )


def test_a_webhook_secret_needs_a_webhook() -> None:
    with pytest.raises(ValueError, match="give both"):
        JobSpec(template="qa-pairs", count=1, webhook_secret="s" * 16)
