"""The OpenAI-compatible /v1 routes with TestClient: shapes, errors, headers, streams.

One app (SQLite) for most of the module, so the embedded model loads once; every request
asks for few tokens. A second app with a priced model faked at the HTTP level checks the
spending cap, and a third with a tight bucket the rate-limit headers.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support.api import PASSWORD, Api, make_settings, start_api
from tests.support.job_backends import MODELS_YAML, register
from tests.support.priced_backend import PRICE
from textnlp.api import deps

pytestmark = pytest.mark.slow
CHAT = "/v1/chat/completions"
TEXT = "/v1/completions"
MODEL = "smollm2-135m"
SHORT = {"model": MODEL, "max_tokens": 6, "temperature": 0.0}


def chat(content: str = "Say hello.", **fields: Any) -> dict[str, Any]:
    return {**SHORT, "messages": [{"role": "user", "content": content}], **fields}


def assert_openai_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def sse_data(response: Any) -> list[str]:
    return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


# Models ---------------------------------------------------------------------------------------
def test_models_are_listed_in_openais_shape(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/v1/models", headers=sqlite_api.headers("alice"))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert MODEL in ids and "all-minilm-l6-v2" in ids
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int)
        assert isinstance(model["owned_by"], str)
    one = sqlite_api.client.get(f"/v1/models/{MODEL}", headers=sqlite_api.headers("alice"))
    assert one.status_code == 200 and one.json()["id"] == MODEL
    unknown = sqlite_api.client.get("/v1/models/no-such", headers=sqlite_api.headers("alice"))
    error = assert_openai_error(unknown, 404, "model_not_found")
    assert error["type"] == "invalid_request_error" and error["param"] == "model"


def test_every_answer_carries_rate_limit_headers(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/v1/models", headers=sqlite_api.headers("alice"))
    limit = int(response.headers["x-ratelimit-limit-requests"])
    remaining = int(response.headers["x-ratelimit-remaining-requests"])
    assert limit == sqlite_api.settings.api.rate_limit_burst and 0 <= remaining < limit
    assert response.headers["x-ratelimit-reset-requests"].endswith(("ms", "s"))


# Chat completions -----------------------------------------------------------------------------
def test_chat_completion_shape_and_owner_scoped_cache(sqlite_api: Api) -> None:
    metrics = sqlite_api.client.app.state.metrics  # type: ignore[attr-defined]
    hits = metrics.registry.get_sample_value("textnlp_cache_lookups_total", {"result": "hit"})
    body = chat("Say hello to the cache.")
    first = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice"))
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["object"] == "chat.completion" and answer["id"].startswith("chatcmpl-")
    assert answer["model"] == MODEL and isinstance(answer["created"], int)
    choice = answer["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] in {"stop", "length"}
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert "x-ratelimit-remaining-requests" in first.headers
    # Deterministic: Alice's second ask is a cache hit; Bob's is not (the cache is per owner).
    again = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice")).json()
    assert again["choices"][0]["message"] == choice["message"]
    after = metrics.registry.get_sample_value("textnlp_cache_lookups_total", {"result": "hit"})
    assert (after or 0) == (hits or 0) + 1
    sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("bob"))
    bob = metrics.registry.get_sample_value("textnlp_cache_lookups_total", {"result": "hit"})
    assert bob == after


def test_n_choices_seed_and_stop(sqlite_api: Api) -> None:
    body = chat("Name a colour.", n=2, seed=11, temperature=0.9, stop=["\n"])
    answer = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice")).json()
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    again = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("bob")).json()
    assert [c["message"] for c in again["choices"]] == [c["message"] for c in answer["choices"]]
    # max_completion_tokens is the newer name of max_tokens, and wins.
    newer = chat("Count to ten.", max_tokens=20, max_completion_tokens=2)
    cut = sqlite_api.client.post(CHAT, json=newer, headers=sqlite_api.headers("alice")).json()
    assert cut["usage"]["completion_tokens"] <= 2


def test_system_developer_and_text_parts(sqlite_api: Api) -> None:
    parts = [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi."}]
    messages = [
        {"role": "developer", "content": "You are terse."},
        {"role": "user", "content": parts},
    ]
    body = {**SHORT, "messages": messages, "user": "ignored", "store": False}  # unknown: ignored
    response = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice"))
    assert response.status_code == 200, response.text


def test_chat_stream_chunks_usage_and_done(sqlite_api: Api) -> None:
    body = chat("Count to three.", stream=True, stream_options={"include_usage": True})
    with sqlite_api.client.stream(
        "POST", CHAT, json=body, headers=sqlite_api.headers("alice")
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "x-ratelimit-limit-requests" in response.headers
        data = sse_data(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1
    assert chunks[-2]["choices"][0]["finish_reason"] in {"stop", "length"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text


def streamed_choices(api: Api, path: str, body: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """A stream's text per choice index, and its usage (checking each choice's chunks)."""
    with api.client.stream("POST", path, json=body, headers=api.headers("alice")) as response:
        assert response.status_code == 200, response.read()
        data = sse_data(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    *pieces, last = chunks
    assert last["choices"] == [] and len({c["id"] for c in chunks}) == 1
    texts: dict[int, str] = {}
    finishes: dict[int, list[str]] = {}
    for chunk in pieces:
        (choice,) = chunk["choices"]  # one choice per chunk, as OpenAI streams them
        index = choice["index"]
        text = choice["delta"].get("content", "") if "delta" in choice else choice["text"]
        texts[index] = texts.get(index, "") + text
        if choice["finish_reason"] is not None:
            finishes.setdefault(index, []).append(choice["finish_reason"])
    assert sorted(texts) == list(range(len(texts)))
    assert all(len(finishes[i]) == 1 for i in texts), finishes  # each choice ends once
    return [texts[i] for i in sorted(texts)], last["usage"]


def test_a_stream_of_several_choices_matches_the_answer(sqlite_api: Api) -> None:
    body = chat("Name a fruit.", max_tokens=8, temperature=0.8, seed=11, n=3)
    answer = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice")).json()
    expected = [c["message"]["content"] for c in answer["choices"]]
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    texts, usage = streamed_choices(sqlite_api, CHAT, streamed)
    assert texts == expected and len(set(expected)) > 1  # seeds seed, seed+1...: choices differ
    assert usage == answer["usage"]  # every choice counted
    # As OpenAI counts: the prompt once, whatever n; the choices' tokens each.
    one = sqlite_api.client.post(CHAT, json={**body, "n": 1}, headers=sqlite_api.headers("alice"))
    assert answer["usage"]["prompt_tokens"] == one.json()["usage"]["prompt_tokens"]
    assert answer["usage"]["completion_tokens"] > one.json()["usage"]["completion_tokens"]


def test_a_stream_does_not_outlive_its_key(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps, "RECHECK_S", 0.05)
    bearer = {"Authorization": f"Bearer {sqlite_api.login('bob')['access_token']}"}
    key = sqlite_api.client.post(
        "/api/v1/auth/api-keys", json={"name": "v1-recheck"}, headers=bearer
    ).json()
    # Greedy: a sampled answer sometimes ended after a few tokens, before any recheck.
    body = chat(
        "List one hundred animals, one per line.", max_tokens=400, stream=True, temperature=0
    )
    with sqlite_api.client.stream(
        "POST", CHAT, json=body, headers={"Authorization": f"Bearer {key['key']}"}
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        next(line for line in lines if line.startswith("data: {"))
        revoked = sqlite_api.client.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=bearer)
        assert revoked.status_code == 200
        data = [line[6:] for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]  # what the openai SDK raises as APIError
    assert error["code"] == "invalid_api_key", error


def test_a_stream_without_include_usage_has_no_usage(sqlite_api: Api) -> None:
    with sqlite_api.client.stream(
        "POST", CHAT, json=chat(stream=True), headers=sqlite_api.headers("alice")
    ) as response:
        data = sse_data(response)
    chunks = [json.loads(d) for d in data[:-1]]
    assert all("usage" not in c for c in chunks) and data[-1] == "[DONE]"


def test_a_stream_that_cannot_start_answers_an_http_error(sqlite_api: Api) -> None:
    for n in (1, 3):
        body = chat("x" * 20, stream=True, max_tokens=2048, n=n)
        response = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice"))
        assert_openai_error(response, 400, "context_length_exceeded")


# response_format ------------------------------------------------------------------------------
ANN = 'Reply in JSON like {"name": "Ann", "age": 30}.'


def test_json_object_answers_only_a_json_object(sqlite_api: Api) -> None:
    fmt = {"type": "json_object"}
    body = chat(ANN, max_tokens=60, temperature=0.7, seed=5, response_format=fmt)
    response = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice"))
    assert response.status_code == 200, response.text
    for choice in response.json()["choices"]:
        assert isinstance(json.loads(choice["message"]["content"]), dict)
        assert choice["finish_reason"] == "stop"


def test_json_object_needs_the_word_json(sqlite_api: Api) -> None:
    body = chat("Say hi.", response_format={"type": "json_object"})
    response = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice"))
    assert assert_openai_error(response, 400)["param"] == "messages"


def test_json_schema_refusals(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    unsafe = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(a+)+\\1"}}}
    for schema in (unsafe, {"type": "array"}, {"$ref": "https://example.com/s.json"}):
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
        body = chat("Answer in JSON.", response_format=fmt)
        response = sqlite_api.client.post(CHAT, json=body, headers=headers)
        assert assert_openai_error(response, 400)["param"] == "response_format", schema
    # A schema no answer can satisfy: 400 at once (it was a 502 after every retry, which the
    # SDK retried again).
    impossible = {"type": "integer", "minimum": 10, "maximum": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"properties": {"a": impossible}, "required": ["a"]}, "schema.properties.a: minimum"),
        ({"properties": {"a": {"enum": []}}, "required": ["a"]}, "properties.a: enum []"),
        ({"allOf": [{"minProperties": 3, "maxProperties": 2}]}, "schema.allOf.0: minProperties"),
    ]
    for schema, where in cases:
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
        body = chat("Answer in JSON.", response_format=fmt)
        error = assert_openai_error(sqlite_api.client.post(CHAT, json=body, headers=headers), 400)
        assert where in error["message"] and "no value can satisfy it" in error["message"]
    # Cut at max_tokens before the object ends: 400 naming max_tokens.
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    body = chat("Write a long JSON object.", max_tokens=1, response_format=fmt)
    response = sqlite_api.client.post(CHAT, json=body, headers=headers)
    assert assert_openai_error(response, 400)["param"] == "max_tokens"
    # Cut by a stop sequence the JSON holds: 400 naming stop (a 502 the SDK retried twice).
    fmt = {"type": "json_object"}
    body = chat(ANN, max_tokens=60, temperature=0, stop=[","], response_format=fmt)
    response = sqlite_api.client.post(CHAT, json=body, headers=headers)
    assert assert_openai_error(response, 400)["param"] == "stop"


def test_json_schema_streamed_is_one_checked_chunk(sqlite_api: Api) -> None:
    schema = {
        "type": "object",
        "required": ["name", "age"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    body = chat(ANN, max_tokens=60, temperature=0.7, seed=2, response_format=fmt, stream=True)
    with sqlite_api.client.stream(
        "POST", CHAT, json=body, headers=sqlite_api.headers("alice")
    ) as response:
        assert response.status_code == 200, response.read()
        data = sse_data(response)
    chunks = [json.loads(d) for d in data[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert isinstance(json.loads(content)["age"], int) and data[-1] == "[DONE]"


def test_no_valid_json_after_the_retries_is_a_502(sqlite_api: Api) -> None:
    # The small model does not name a colour in this shape: told as an error, never faked.
    schema = {
        "type": "object",
        "required": ["colour"],
        "properties": {"colour": {"type": "string"}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "colour", "schema": schema}}
    body = chat("Name a colour.", max_tokens=40, temperature=0.7, seed=3, response_format=fmt)
    response = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice"))
    if response.status_code != 200:
        error = assert_openai_error(response, 502, "backend_error")
        assert error["type"] == "server_error" and "valid JSON" in error["message"]
    else:
        assert "colour" in json.loads(response.json()["choices"][0]["message"]["content"])


# Text completions -----------------------------------------------------------------------------
def test_completions_of_several_prompts_and_a_stream(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    body = {**SHORT, "prompt": ["Once upon a time", "The sky is"], "n": 2, "seed": 1}
    answer = sqlite_api.client.post(TEXT, json=body, headers=headers).json()
    assert answer["object"] == "text_completion" and answer["id"].startswith("cmpl-")
    assert [c["index"] for c in answer["choices"]] == [0, 1, 2, 3]
    assert all(c["logprobs"] is None and "text" in c for c in answer["choices"])
    stream = {**SHORT, "prompt": "Once upon a time", "stream": True}
    with sqlite_api.client.stream("POST", TEXT, json=stream, headers=headers) as response:
        data = sse_data(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    # Several prompts streamed: choices in OpenAI's order (prompt 0's n, then prompt 1's).
    several = {**body, "stream": True, "stream_options": {"include_usage": True}}
    texts, usage = streamed_choices(sqlite_api, TEXT, several)
    assert texts == [c["text"] for c in answer["choices"]]
    assert usage == answer["usage"]
    # Each of the two prompts counted once, not once per choice.
    alone = [
        sqlite_api.client.post(TEXT, json={**SHORT, "prompt": p}, headers=headers).json()
        for p in ("Once upon a time", "The sky is")
    ]
    assert usage["prompt_tokens"] == sum(a["usage"]["prompt_tokens"] for a in alone)
    # A prompt listed twice is two prompts (they were told apart by their text alone).
    twice = {**SHORT, "prompt": ["The sky is"] * 2}
    answer = sqlite_api.client.post(TEXT, json=twice, headers=headers).json()
    assert answer["usage"]["prompt_tokens"] == 2 * alone[1]["usage"]["prompt_tokens"]
    twice = {**twice, "stream": True, "stream_options": {"include_usage": True}}
    assert streamed_choices(sqlite_api, TEXT, twice)[1] == answer["usage"]


# Embeddings -----------------------------------------------------------------------------------
def test_embeddings_as_floats_and_base64(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    body = {"model": "all-minilm-l6-v2", "input": ["A cat.", "Un chat."]}
    floats = sqlite_api.client.post("/v1/embeddings", json=body, headers=headers)
    assert floats.status_code == 200, floats.text
    answer = floats.json()
    assert answer["object"] == "list" and answer["model"] == "all-minilm-l6-v2"
    assert [d["index"] for d in answer["data"]] == [0, 1]
    vector = np.array(answer["data"][0]["embedding"], dtype=np.float32)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3
    assert answer["usage"]["prompt_tokens"] == answer["usage"]["total_tokens"] > 0
    packed = sqlite_api.client.post(
        "/v1/embeddings", json={**body, "encoding_format": "base64"}, headers=headers
    ).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, vector, atol=1e-6)
    single = {"model": "all-minilm-l6-v2", "input": "One text.", "dimensions": 384}
    assert sqlite_api.client.post("/v1/embeddings", json=single, headers=headers).status_code == 200


def test_embedding_refusals(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    url = "/v1/embeddings"
    base = {"model": "all-minilm-l6-v2", "input": "x"}
    refusals = [
        ({**base, "dimensions": 128}, 400, "dimensions"),
        ({**base, "input": [1, 2, 3]}, 400, None),  # token ids: not this model's
        ({**base, "input": ""}, 400, "input"),
        ({**base, "model": MODEL}, 400, "model"),
        ({**base, "model": "text-embedding-3-small"}, 404, "model"),
    ]
    for body, status, param in refusals:
        error = assert_openai_error(sqlite_api.client.post(url, json=body, headers=headers), status)
        if param is not None:
            assert error["param"] == param, (body, error)


# Errors ---------------------------------------------------------------------------------------
def test_authentication_errors(sqlite_api: Api) -> None:
    missing = sqlite_api.client.post(CHAT, json=chat())
    error = assert_openai_error(missing, 401, "invalid_api_key")
    assert error["type"] == "invalid_request_error"
    wrong = sqlite_api.client.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"})
    assert_openai_error(wrong, 401, "invalid_api_key")
    key = sqlite_api.client.post(
        "/api/v1/auth/api-keys", json={"name": "openai"}, headers=sqlite_api.headers("alice")
    ).json()["key"]
    with_key = sqlite_api.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert with_key.status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(model="no-such-model"), "model"),
        ({**SHORT, "messages": []}, "messages"),
        ({**SHORT, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({**SHORT, "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({**SHORT, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, None),
        (chat(n=17), "n"),
        (chat(max_tokens=5000), "max_tokens"),
        (chat(max_tokens=2040), "messages"),  # beyond the context
        (chat(temperature=3), "temperature"),
        (chat(top_p=0), "top_p"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(tools=[{"type": "function", "function": {"name": "f"}}]), "tools"),
        (chat(logprobs=True), "logprobs"),
        (chat(presence_penalty=0.5), "presence_penalty"),
        (chat(response_format={"type": "yaml"}), None),
        (chat("x" * 40_000), "messages"),
        ({**SHORT, "messages": [{"role": "user", "content": "\ud800"}]}, None),
        ({**SHORT, "messages": [{"role": "user"}]}, None),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (chat(model="all-minilm-l6-v2"), "model"),
        (chat(model=""), "model"),  # was answered by the default model
        (chat(tool_choice="required"), "tool_choice"),  # asks for a call that cannot come
        (chat(tool_choice={"type": "function", "function": {"name": "f"}}), "tool_choice"),
        (chat(function_call="auto"), "function_call"),
        ({**SHORT, "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0"),
    ],
)
def test_bad_chat_requests_answer_4xx_in_openais_shape(
    sqlite_api: Api, body: dict[str, Any], param: str | None
) -> None:
    raw = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels escaped
    response = sqlite_api.client.post(
        CHAT,
        content=raw,
        headers={**sqlite_api.headers("alice"), "Content-Type": "application/json"},
    )
    status = 404 if body.get("model") == "no-such-model" else 400
    error = assert_openai_error(response, status)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] is not None and error["param"].startswith(param), error


def test_param_is_the_fields_path_in_the_body(sqlite_api: Api) -> None:
    # Not pydantic's loc, which adds a union's tag ("response_format.json_schema.json_schema").
    def schema_format(json_schema: Any) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": json_schema}

    for body, param in (
        (
            chat(response_format=schema_format({"name": "x", "schema": 5})),
            "response_format.json_schema.schema",
        ),
        (chat(response_format=schema_format({"schema": {}})), "response_format.json_schema.name"),
        (chat(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (
            chat(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
            "messages.0.content.0.text",
        ),
    ):
        response = sqlite_api.client.post(CHAT, json=body, headers=sqlite_api.headers("alice"))
        assert assert_openai_error(response, 400)["param"] == param
    for fields, param, message in (
        ({"prompt": ""}, "prompt", "at least 1 character"),
        ({"prompt": 5}, "prompt", "a string or a list"),
        ({"prompt": "Hi", "stop": ["a", 5]}, "stop.1", "a valid string"),
    ):
        body = {**SHORT, **fields}
        response = sqlite_api.client.post(TEXT, json=body, headers=sqlite_api.headers("alice"))
        error = assert_openai_error(response, 400)
        assert error["param"] == param and message in error["message"], error


def test_malformed_json_and_unknown_routes(sqlite_api: Api) -> None:
    headers = {**sqlite_api.headers("alice"), "Content-Type": "application/json"}
    for raw in (b"{bad", b"", b"[]", b'"text"', '{"model": "é\u00e9'.encode()):
        response = sqlite_api.client.post(CHAT, content=raw, headers=headers)
        assert_openai_error(response, 400)
    assert_openai_error(sqlite_api.client.get("/v1/nothing", headers=headers), 404, "unknown_url")
    bad = sqlite_api.client.post(CHAT, content=b'{"model": }', headers=headers).json()["error"]
    assert bad["message"] == "could not parse the JSON body: Expecting value at character 10"
    nan = b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": NaN}'
    bad = sqlite_api.client.post(CHAT, content=nan, headers=headers).json()["error"]
    assert bad["param"] == "top_p" and "finite number" in bad["message"]
    typed = b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "2"}'
    bad = sqlite_api.client.post(CHAT, content=typed, headers=headers).json()["error"]
    assert bad["param"] == "max_tokens" and bad["message"].endswith("a valid integer")
    # The native routes keep their own shape and 422.
    native = sqlite_api.client.post(
        "/api/v1/generate/text", json={"prompt": 1}, headers=sqlite_api.headers("alice")
    )
    assert native.status_code == 422 and native.json()["error"]["type"] == "validation_error"


def test_completion_refusals(sqlite_api: Api) -> None:
    headers = sqlite_api.headers("alice")
    for fields, param in (
        ({"echo": True}, "echo"),
        ({"best_of": 3}, "best_of"),
        ({"suffix": "end"}, "suffix"),
        ({"logprobs": 0}, "logprobs"),  # the sampled tokens' own: null would ignore it unsaid
        ({"prompt": ["a"] * 9, "n": 2}, "prompt"),
        ({"prompt": [[1, 2]]}, "prompt"),
        ({"prompt": "word " * 3000, "max_tokens": 2}, "prompt"),  # past the context: no messages
        ({"model": ""}, "model"),
    ):
        body = {**SHORT, "prompt": "Hello", **fields}
        error = assert_openai_error(sqlite_api.client.post(TEXT, json=body, headers=headers), 400)
        assert error["param"] is not None and error["param"].startswith(param), (fields, error)
    for ids in ([1, 2, 3], [[1, 2], [3]]):  # OpenAI's token-id prompts: said so, not "prompt.str"
        body = {**SHORT, "prompt": ids}
        error = assert_openai_error(sqlite_api.client.post(TEXT, json=body, headers=headers), 400)
        assert error["param"] == "prompt"
        assert error["message"] == "prompt: prompts as token ids are not supported here: send text"


# Rate limits and spending caps ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tight_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = make_settings(
        tmp_path_factory.mktemp("tight"), api={"user_rate_limits": {"bob": [0.01, 3]}}
    )
    yield from start_api(settings)


def test_rate_limit_headers_count_down_then_429(tight_api: Api) -> None:
    headers = tight_api.headers("bob")  # the login takes no token of bob's bucket
    answers = [tight_api.client.get("/v1/models", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    remaining = [int(a.headers["x-ratelimit-remaining-requests"]) for a in answers[:3]]
    assert remaining == [2, 1, 0]
    assert all(a.headers["x-ratelimit-limit-requests"] == "3" for a in answers[:3])
    error = assert_openai_error(answers[3], 429, "rate_limit_exceeded")
    assert error["type"] == "requests"
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].headers["x-ratelimit-remaining-requests"] == "0"
    assert answers[3].headers["x-ratelimit-reset-requests"].endswith("s")


@pytest.fixture(scope="module")
def priced_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    register()
    home = tmp_path_factory.mktemp("priced")
    models = home / "models.yaml"
    models.write_text(MODELS_YAML)
    overrides: dict[str, Any] = {
        "models_file": models,
        "models": {"prices": {"fake-priced": PRICE}, "user_spending_cap_usd": 0.1},
    }
    yield from start_api(make_settings(home, **overrides))


def test_the_spending_cap_refuses_with_insufficient_quota(priced_api: Api) -> None:
    name = f"u-{uuid.uuid4().hex[:8]}"
    priced_api.client.app.state.auth.create_user(name, PASSWORD)  # type: ignore[attr-defined]
    headers = priced_api.headers(name)
    body = chat(model="fake-priced", max_tokens=20, temperature=0.7)
    answers = [priced_api.client.post(CHAT, json=body, headers=headers) for _ in range(4)]
    # Two fit; then one whose worst case would pass the cap is refused before it runs.
    assert [a.status_code for a in answers[:2]] == [200, 200], answers[0].text
    error = assert_openai_error(answers[3], 429, "insufficient_quota")
    assert error["type"] == "insufficient_quota" and "Retry-After" not in answers[3].headers


def test_a_path_parameter_never_puts_the_callers_segments_in_a_metric_label(
    sqlite_api: Api,
) -> None:
    """``/v1/models/{model_id:path}`` takes any number of segments; its label must stay the
    template (as the API documents it, ``{model_id}``), or anyone (unauthenticated too) could
    mint metric series without end."""
    for n in range(3):
        sqlite_api.client.get(f"/v1/models/org{n}/family/model-{n}")
    metrics = sqlite_api.client.app.state.metrics.render().decode()  # type: ignore[attr-defined]
    assert 'route="/v1/models/{model_id}"' in metrics
    assert "org0" not in metrics and "family" not in metrics
