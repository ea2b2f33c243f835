"""The response cache is per user on the OpenAI-compatible routes, as the real SDK meets it.

Two users of one ``textnlp serve`` (embedded model, the local SQLite response cache) ask the
same deterministic request. The model answers both alike, so equal text proves nothing: after
alice's answers are cached, the test rewrites every stored entry (the real cache file) to a
marker. alice then gets the marker back (the cache answers on these routes), bob never does,
streaming or not, on chat and text completions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support.serve import Served, ServeUser, serve

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"
MARKER = "alice-only-cached-answer"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Name a colour."}]
PROMPT = "A colour:"


@dataclass(frozen=True)
class Clients:
    alice: openai.OpenAI
    bob: openai.OpenAI
    served: Served


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    root = tmp_path_factory.mktemp("openai-cache-scope")
    users = [ServeUser("alice", "alice-password-1"), ServeUser("bob", "bob-password-12")]
    with serve(root, users=users) as served:
        sdk = {
            name: openai.OpenAI(
                base_url=f"{served.url}/v1", api_key=served.api_key(name), max_retries=0
            )
            for name in ("alice", "bob")
        }
        try:
            yield Clients(sdk["alice"], sdk["bob"], served)
        finally:
            for client in sdk.values():
                client.close()


def _chat(client: openai.OpenAI) -> str:
    answer = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=6, temperature=0
    )
    return answer.choices[0].message.content or ""


def _text(client: openai.OpenAI) -> str:
    answer = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=6, temperature=0)
    return answer.choices[0].text


def _streamed_chat(client: openai.OpenAI) -> str:
    chunks = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=6,
        temperature=0,
        stream=True,
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _streamed_text(client: openai.OpenAI) -> str:
    chunks = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=6, temperature=0, stream=True
    )
    return "".join(c.choices[0].text for c in chunks if c.choices)


def test_one_users_cached_answer_never_reaches_another(clients: Clients) -> None:
    assert _chat(clients.alice) and _text(clients.alice)  # both cached, in alice's scope
    database = sqlite3.connect(clients.served.home / "cache" / "responses.sqlite")
    try:
        with database:
            rewritten = database.execute(
                "UPDATE responses SET completion = json_set(completion, '$.text', ?)", (MARKER,)
            ).rowcount
    finally:
        database.close()
    assert rewritten >= 2
    # The cache answers on both routes: what alice gets now is what is stored.
    assert _chat(clients.alice) == MARKER and _text(clients.alice) == MARKER
    for ask in (_chat, _text, _streamed_chat, _streamed_text):
        answer = ask(clients.bob)
        assert answer and MARKER not in answer, ask.__name__
    # bob's requests cached answers in his own scope; alice's entry is untouched.
    assert _chat(clients.alice) == MARKER
