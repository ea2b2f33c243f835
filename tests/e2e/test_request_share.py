"""One user cannot take every request the server serves at once: ``textnlp serve`` as a process,
driven with httpx and the real ``openai`` SDK.

The server's in-flight limit (``api.max_concurrent_requests``) is everyone's. Bob, an ordinary
user, held all of it with slow streams (completions, the console's event streams of his jobs),
and every other user's request answered 503 for as long as he kept them open. Each user now
has ``api.max_requests_per_user`` of it: Bob's next request answers 429 (his own limit), Alice
is served, and Bob's slots come back once his streams end.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import openai
import pytest

from tests.support.serve import Served, ServeUser, serve
from textnlp.api.console.csrf import CSRF_FIELD

pytestmark = pytest.mark.slow
PASSWORD = "e2e-password-123"
LIMITS = {
    "TEXTNLP_API__MAX_CONCURRENT_REQUESTS": "4",
    "TEXTNLP_API__MAX_REQUESTS_PER_USER": "2",
}
LOGIN = "/console/login"
#: How long the client waits for the server to notice Bob's closed streams: far beyond it.
PATIENCE_S = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    users = [ServeUser("alice", PASSWORD), ServeUser("bob", PASSWORD)]
    with serve(tmp_path_factory.mktemp("request-share"), users=users, env=LIMITS) as served:
        yield served


def _token(server: Served, username: str) -> str:
    answer = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _sdk(server: Served, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0, timeout=60)


def _console(stack: ExitStack, server: Served, username: str) -> httpx.Client:
    """A browser logged in to the console as ``username``."""
    browser = stack.enter_context(httpx.Client(base_url=server.url, timeout=60))
    page = browser.get(LOGIN)
    token = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.text)
    assert token is not None, page.text
    form = {CSRF_FIELD: token[1], "username": username, "password": PASSWORD, "next": "/console"}
    assert browser.post(LOGIN, data=form).status_code == 303
    return browser


def _open_stream(stack: ExitStack, browser: httpx.Client) -> None:
    """The console's stream of its user's jobs (it runs until the page leaves), left open once
    the server has answered it: the request is in progress."""
    response = stack.enter_context(browser.stream("GET", "/console/jobs/events"))
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")


def test_one_users_streams_leave_the_server_to_others(server: Served) -> None:
    bob, alice = _token(server, "bob"), _token(server, "alice")
    with ExitStack() as stack:
        browser = _console(stack, server, "bob")
        for _ in range(2):
            _open_stream(stack, browser)
        # Bob's third request (his API token, the same user) is over his own share: refused
        # at once, a 429 the SDK reads.
        with pytest.raises(openai.RateLimitError) as refused:
            _sdk(server, bob).models.list()
        assert refused.value.status_code == 429
        assert "in progress" in str(refused.value)
        # The server has room left for Alice, whatever Bob keeps open.
        models = _sdk(server, alice).models.list()
        assert "smollm2-135m" in {m.id for m in models.data}
    # Bob's streams are closed: his slots come back (the server notices the closed streams).
    deadline = time.monotonic() + PATIENCE_S
    while True:
        try:
            assert _sdk(server, bob).models.list().data
            break
        except openai.RateLimitError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
