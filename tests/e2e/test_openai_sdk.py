"""The real ``openai`` SDK (and LangChain's ``ChatOpenAI``) against ``textnlp serve``.

One server process for the module, on the embedded model, with a user and an API key made
as a user would (``textnlp users create``, then the native login and ``auth/api-keys``); the
clients get the key as their ``api_key`` and ``<server>/v1`` as their ``base_url``. Every
request asks for few tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.serve import ServeUser, serve

pytestmark = pytest.mark.slow
PASSWORD = "openai-e2e-password"
MODEL = "smollm2-135m"
EMBEDDINGS = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("openai-e2e")
    with serve(root, users=[ServeUser("dora", PASSWORD)]) as served:
        yield served.url


@pytest.fixture(scope="module")
def api_key(server: str) -> str:
    login = httpx.post(
        f"{server}/api/v1/auth/login", json={"username": "dora", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    key = httpx.post(
        f"{server}/api/v1/auth/api-keys",
        json={"name": "openai-sdk"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert key.status_code in {200, 201}, key.text
    value: str = key.json()["key"]
    return value


@pytest.fixture
def client(server: str, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server}/v1", api_key=api_key, max_retries=0) as sdk:
        yield sdk


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert MODEL in ids and EMBEDDINGS in ids
    assert client.models.retrieve(MODEL).id == MODEL


def test_sync_chat(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello."},
        ],
        max_tokens=8,
        temperature=0,
    )
    assert answer.object == "chat.completion" and answer.model == MODEL
    assert answer.choices[0].message.role == "assistant" and answer.choices[0].message.content
    assert answer.choices[0].finish_reason in {"stop", "length"}
    assert answer.usage is not None and answer.usage.completion_tokens >= 1
    # The headers a client paces itself with.
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert int(raw.headers["x-ratelimit-remaining-requests"]) >= 0
    assert raw.parse().choices
    # ``stream`` is "boolean or null" in OpenAI's API: code passing a kwarg through sends null.
    unstreamed = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, stream=None
    )
    assert unstreamed.choices[0].message.content is not None


async def test_async_chat(server: str, api_key: str) -> None:
    async with openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=api_key) as sdk:
        answer = await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=6
        )
        assert answer.choices[0].message.content
        stream = await sdk.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count to three."}],
            max_tokens=6,
            stream=True,
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        assert "".join(pieces)


def test_streaming_chat_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count to three."}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)  # the SDK stops at [DONE]
    assert chunks[0].object == "chat.completion.chunk"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] in {"stop", "length"}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 1


def test_completions_and_n_choices(client: openai.OpenAI) -> None:
    answer = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=5)
    assert answer.object == "text_completion" and answer.choices[0].text
    two = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a fruit."}],
        max_tokens=5,
        n=2,
        temperature=0.9,
    )
    assert [c.index for c in two.choices] == [0, 1]


def test_a_stream_of_two_choices(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "Name a fruit."}]
    answer = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=6, n=2, temperature=0.9, seed=4
    )
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=6, n=2, temperature=0.9, seed=4, stream=True
    )
    texts = ["", ""]
    finished: list[int] = []
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason is not None:
                finished.append(choice.index)
    assert texts == [c.message.content for c in answer.choices]
    assert sorted(finished) == [0, 1]


def test_a_seed_reproduces_a_sampled_answer(client: openai.OpenAI) -> None:
    def ask() -> str:
        answer = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Tell me a word."}],
            max_tokens=8,
            temperature=1.0,
            seed=1234,
        )
        return answer.choices[0].message.content or ""

    assert ask() == ask()


def test_json_object_response_format(client: openai.OpenAI) -> None:
    import json

    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": 'Reply in JSON like {"name": "Ann", "age": 30}.'}],
        max_tokens=60,
        temperature=0.7,
        seed=5,
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(answer.choices[0].message.content or ""), dict)


def test_embeddings_floats_and_base64(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(
        model=EMBEDDINGS, input=["A cat.", "A dog."], encoding_format="float"
    )
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 384
    assert floats.usage.prompt_tokens > 0
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    decoded = client.embeddings.create(model=EMBEDDINGS, input="A cat.")
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_errors_are_the_sdks_exception_classes(server: str, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "wizard", "content": "x"}],  # type: ignore[misc, list-item]
        )
    assert bad.value.param == "messages.0.role"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=EMBEDDINGS, input="x", dimensions=64)
    with (
        openai.OpenAI(base_url=f"{server}/v1", api_key="sk-wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.models.list()


def test_langchain_chat_openai(server: str, api_key: str) -> None:
    chat_openai = pytest.importorskip("langchain_openai").ChatOpenAI
    llm = chat_openai(
        model=MODEL, base_url=f"{server}/v1", api_key=api_key, max_tokens=8, temperature=0
    )
    answer = llm.invoke("Say hello.")
    assert isinstance(answer.content, str) and answer.content
    pieces = [chunk.content for chunk in llm.stream("Count to three.")]
    assert "".join(str(p) for p in pieces)
