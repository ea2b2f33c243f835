"""A ``response_format`` schema no finite answer satisfies is the client's 400, not a 502.

A required property whose local ``$ref`` leads back to its own schema (each object needs one
inside it, without end), or to a schema with bounds no value meets, was not seen before
generating: the model ran (and was charged) for every retry, then the request answered 502
``backend_error``, as if the model had failed a schema some answer could satisfy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.conftest import Api
from tests.support.api import start_api_with_models
from tests.support.job_backends import MODELS_YAML

ENDLESS = {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}
LIST = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {"next": {"$ref": "#/$defs/node"}},
            "required": ["next"],
        }
    },
    "properties": {"head": {"$ref": "#/$defs/node"}},
    "required": ["head"],
}
BOUNDS = {
    "$defs": {"n": {"type": "integer", "minimum": 10, "maximum": 1}},
    "properties": {"a": {"$ref": "#/$defs/n"}},
    "required": ["a"],
}


@pytest.fixture(scope="module")
def fake_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from start_api_with_models(tmp_path_factory.mktemp("endless"), MODELS_YAML)


def chat(api: Api, schema: dict[str, Any]) -> Any:
    body = {
        "model": "fake-fast",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "Answer in JSON."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    return api.client.post("/v1/chat/completions", json=body, headers=api.headers("alice"))


@pytest.mark.parametrize("schema", [ENDLESS, LIST, BOUNDS], ids=["self", "linked list", "bounds"])
def test_a_schema_no_answer_satisfies_is_400(fake_api: Api, schema: dict[str, Any]) -> None:
    response = chat(fake_api, schema)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format" and "no value can satisfy it" in error["message"]


def test_a_chain_that_may_end_is_served(fake_api: Api) -> None:
    may_end = {"anyOf": [{"$ref": "#"}, {"type": "null"}]}
    schema = {"type": "object", "properties": {"a": may_end}, "required": ["a"]}
    assert chat(fake_api, schema).status_code != 400
