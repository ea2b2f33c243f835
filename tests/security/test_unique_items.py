"""``uniqueItems`` on a user's array costs one pass, never a comparison of every pair.

jsonschema sorts the items when it can and otherwise compares each with every other: 4,000
objects took half a minute, and the 20,000 of a 300 kB ``validate/quality`` request some
minutes of a worker thread, as one keyword evaluation (under the schema's work bound). As in
``test_regex``, the test does not time the request: it traps jsonschema's pairwise check, so
answering at all proves the linear one ran.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema._keywords
import pytest

from tests.security.conftest import Api

QUALITY = "/api/v1/validate/quality"
UNIQUE = {"properties": {"a": {"uniqueItems": True}}}


@pytest.fixture
def trapped_uniq(monkeypatch: pytest.MonkeyPatch) -> None:
    def trapped(container: Any) -> bool:
        raise AssertionError(f"jsonschema's pairwise uniq ran on {len(container)} items")

    monkeypatch.setattr(jsonschema._keywords, "uniq", trapped)


def valid(api: Api, value: Any) -> Any:
    body = {"texts": [json.dumps({"a": value})], "json_schema": UNIQUE}
    response = api.client.post(QUALITY, json=body, headers=api.headers("alice"))
    assert response.status_code == 200, response.text[:300]
    return response.json()["results"][0]["json_valid"]


@pytest.mark.timeout(120)  # the pairwise check would hold the request for minutes
def test_twenty_thousand_objects_are_checked_in_one_pass(
    sqlite_api: Api, trapped_uniq: None
) -> None:
    items = [{"k": i} for i in range(20_000)]
    assert valid(sqlite_api, items) is True
    assert valid(sqlite_api, [*items, {"k": 19_999}]) is False


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, 1.0], False),  # one number
        ([True, 1], True),  # a boolean is no number
        ([0, False], True),
        ([{"a": 1, "b": 2}, {"b": 2, "a": 1}], False),  # keys are unordered
        ([[1, 2], [2, 1]], True),  # items are not
        ([{"a": [1]}, {"a": [1.0]}], False),
        ([[True], [1]], True),
        (["1", 1], True),
        ([None, None], False),
    ],
)
def test_equality_is_json_schemas(
    sqlite_api: Api, trapped_uniq: None, items: list[Any], unique: bool
) -> None:
    assert valid(sqlite_api, items) is unique
