"""Hostile values on every operation of the OpenAPI schema: never a 5xx.

Schemathesis draws a well-formed request for each operation; a hypothesis strategy then puts
one hostile value somewhere in it (any field of the body at any depth, the whole body, a path
or query parameter): lone surrogates, nesting thousands deep, strings of hundreds of
thousands of characters. Bodies travel as raw JSON text, as an attacker's client sends them.
Every answer must be below 500, and a 4xx must be in the error format.

Bounded: a few dozen examples per operation on an app whose generation bounds keep a model
run to one token, so the suite stays within a couple of minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NotSet

from tests.security.conftest import Api
from tests.support.api import PASSWORD, make_settings, start_api

EXAMPLES = 25
#: Characters of a hostile path or query value (HTTP clients refuse URLs over 64 KiB).
MAX_URL_VALUE = 4_000
PLACEHOLDER = "\x00hostile\x00"


@dataclass(frozen=True)
class Hostile:
    """A value as raw JSON text (deep nesting cannot go through ``json.dumps``) and as text."""

    json: str
    text: str


def _nested(depth: int, kind: str) -> Hostile:
    raw = "[" * depth + "]" * depth if kind == "list" else '{"a": ' * depth + "1" + "}" * depth
    return Hostile(raw, raw)


def _text(value: str) -> Hostile:
    return Hostile(json.dumps(value), value)  # ensure_ascii: a surrogate travels escaped


surrogate = st.characters(categories=["Cs"])
lone_surrogate_text = st.builds(
    lambda head, bad, tail: head + bad + tail, st.text(max_size=8), surrogate, st.text(max_size=8)
)
huge_text = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["a", "é", "{", "\\", "\U0001f600", "\x00"]),
    st.sampled_from([70_000, 140_000]),
)
HOSTILE = st.one_of(
    lone_surrogate_text.map(_text),
    huge_text.map(_text),
    st.builds(_nested, st.sampled_from([100, 3_000, 50_000]), st.sampled_from(["list", "dict"])),
)


def locations(value: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield where
    if isinstance(value, dict):
        for key, item in value.items():
            yield from locations(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from locations(item, (*where, index))


def replaced(value: Any, where: tuple[Any, ...], new: Any) -> Any:
    if not where:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[where[0]] = replaced(copy[where[0]], where[1:], new)  # type: ignore[index]
    return copy


@dataclass
class Request:
    method: str
    url: str
    content: bytes | None
    content_type: str | None


def hostile_request(case: Any, data: st.DataObject) -> Request:
    value: Hostile = data.draw(HOSTILE, label="hostile value")
    path_params = {k: str(v) for k, v in (case.path_parameters or {}).items()}
    query = {k: str(v) for k, v in (case.query or {}).items()}
    has_body = not isinstance(case.body, NotSet)
    body = case.body if has_body and _is_json(case) else None
    targets = ["path"] * bool(path_params) + ["query"] + ["body"] * has_body
    target = data.draw(st.sampled_from(targets), label="target")
    if target == "path":
        name = data.draw(st.sampled_from(sorted(path_params)), label="parameter")
        path_params[name] = value.text[:MAX_URL_VALUE]
    elif target == "query":  # a parameter of the operation, or one it does not know
        name = data.draw(st.sampled_from(sorted(query) or ["q"]), label="parameter")
        query[name] = value.text[:MAX_URL_VALUE]
    url = case.path
    for name, text in path_params.items():
        url = url.replace("{" + name + "}", _quoted(text))
    if query:
        url += "?" + urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    if not has_body:
        return Request(case.method, url, None, None)
    if not _is_json(case):  # an upload: one JSONL line holding the value
        line = '{"prompt": ' + value.json + "}\n"
        return Request(case.method, url, line.encode("utf-8", "surrogatepass"), None)
    if target == "body":
        where = data.draw(st.sampled_from(list(locations(body))), label="where")
        body = replaced(body, where, PLACEHOLDER)
    raw = json.dumps(body).replace(json.dumps(PLACEHOLDER), value.json)
    return Request(case.method, url, raw.encode(), "application/json")


def _is_json(case: Any) -> bool:
    return case.media_type in {None, "application/json"}


def _quoted(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    config = make_settings(tmp_path_factory.mktemp("fuzz"), api={"max_tokens": 1, "max_n": 1})
    yield from start_api(config)


def operations(api: Api) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def test_hostile_values_never_answer_5xx(fuzzed_api: Api) -> None:
    key = fuzzed_api.client.post(
        "/api/v1/auth/api-keys", json={"name": "fuzzer"}, headers=fuzzed_api.headers("admin")
    ).json()["key"]
    # An API key: a fuzzed logout or refresh cannot end the session the fuzzer runs on.
    headers = {"X-API-Key": key}
    failures: list[str] = []
    ops = operations(fuzzed_api)
    assert len(ops) >= 15
    for operation in ops:
        try:
            fuzz(fuzzed_api, operation, headers)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def fuzz(api: Api, operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(), data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any, data: st.DataObject) -> None:
        request = hostile_request(case, data)
        sent = dict(headers)
        if request.content_type:
            sent["Content-Type"] = request.content_type
        response = api.client.request(
            request.method, request.url, content=request.content, headers=sent
        )
        assert response.status_code < 500, (
            f"{request.method} {request.url[:200]}: {response.text[:300]}"
        )
        if response.status_code >= 400:
            assert isinstance(response.json()["error"]["message"], str), response.text[:300]

    check()


def test_the_fuzzer_sends_what_it_says(fuzzed_api: Api) -> None:
    # The control: a lone surrogate really reaches the app as one (and is refused).
    response = fuzzed_api.client.post(
        "/api/v1/auth/login",
        content=json.dumps({"username": "\ud800", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422 and "Unicode" in response.text
