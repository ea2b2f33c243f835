"""The app of the playground, catalogue and admin page tests, and a browser logged in to it.

The app (SQLite, local profile) has fast fake models beside the embedded one (``fake-fast``,
the deterministic ``FakeBackend``; ``fake-priced``, an OpenAI-compatible server faked at the
HTTP level with a price) and a templates directory holding ``hostile``: a template whose
description, prompts, variable values and names carry markup, which must render inert.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient

from tests.support.api import Api, make_settings, start_api
from tests.support.console import csrf_of, fresh_browser
from tests.support.console import log_in as console_log_in
from tests.support.job_backends import MODELS_YAML, register
from tests.support.priced_backend import PRICE

#: Logins are rate limited per username; these tests log in more often than that.
LOGIN_LIMITS = {"login_limit_per_username": (50.0, 200), "login_limit_per_address": None}
SCRIPT = "<script>alert(1)</script>"
HOSTILE_TEMPLATE = {
    "id": "hostile",
    "description": f"Markup everywhere {SCRIPT}",
    "system": f"You are {SCRIPT}.",
    "user": "Write about {{ topic }}. <b>bold</b>",
    "variables": {
        "topic": {"values": [SCRIPT, "cats"], "description": '<img src=x onerror="alert(2)">'},
        'x"><script>alert(3)</script>': {"value": 1},
    },
    "defaults": {"max_tokens": 8},
}


@pytest.fixture(scope="module")
def pages_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Users admin, alice and bob; models fake-fast and fake-priced; template ``hostile``."""
    register()
    home = tmp_path_factory.mktemp("console-pages")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    templates = home / "templates"
    templates.mkdir()
    (templates / "hostile.yaml").write_text(json.dumps(HOSTILE_TEMPLATE))  # JSON is YAML
    settings = make_settings(
        home,
        models_file=models,
        templates_dir=templates,
        models={"prices": {"fake-priced": PRICE}},
        api=LOGIN_LIMITS,
    )
    yield from start_api(settings)


@pytest.fixture
def browser(pages_app: Api) -> Iterator[TestClient]:
    """The module's client as a fresh browser: no cookies, redirects not followed."""
    yield from fresh_browser(pages_app.client)


def log_in(client: TestClient, username: str = "alice") -> str:
    """Log in through the console's form; returns the browser's CSRF token."""
    answer = console_log_in(client, username)
    assert answer.status_code == 303, answer.text
    return csrf_of(client, "/console/keys")


def htmx(token: str) -> dict[str, str]:
    """The headers htmx sends (``hx-headers`` of the page's body)."""
    return {"HX-Request": "true", "X-CSRF-Token": token}


class Streamed(Protocol):
    """A streamed answer (the test client's)."""

    def iter_lines(self) -> Iterator[str]: ...


def sse_events(answer: Streamed) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each Server-Sent Event of a streamed answer."""
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "message", list[str]()

    def flush() -> None:
        if data:
            events.append((name, json.loads("\n".join(data))))
            data.clear()

    for line in answer.iter_lines():
        if line.startswith("event:"):
            flush()  # every event of these streams is named
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].removeprefix(" "))
        elif line == "":
            flush()
    flush()
    return events


def commands_of(page: str) -> list[str]:
    """The text of the page's command blocks, unescaped."""
    blocks = re.findall(
        r'<pre id="pg-command-\d+" class="command"><code>(.*?)</code></pre>', page, re.S
    )
    return [html.unescape(block) for block in blocks]
