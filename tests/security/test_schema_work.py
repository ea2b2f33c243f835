"""A keyword that goes through a long list or object each time it runs costs its length.

``enum`` and ``properties`` scan their whole value on every evaluation, and the
work bound (``safe_schema.MAX_EVALUATIONS``) counted each evaluation as one step: an ``enum``
of 100,000 numbers on the items of an array (a 700 kB ``validate/quality`` request) scanned
them for every item, 11 s for 100 items, some minutes for thousands, holding a worker; 1,000
``patternProperties`` matched every key of an object each (17 s for 1,000 keys). Counted by
length, such a schema stops at the bound with a 422 that says so; small keywords stay one step.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.security.conftest import Api

QUALITY = "/api/v1/validate/quality"


def quality(api: Api, schema: dict[str, Any], value: Any) -> Any:
    body = {"texts": [json.dumps({"a": value})], "json_schema": schema}
    return api.client.post(QUALITY, json=body, headers=api.headers("alice"))


@pytest.mark.timeout(120)  # counted as one step each, these scans took minutes
@pytest.mark.parametrize(
    ("keyword", "items", "value"),
    [
        ("enum", {"enum": list(range(100_000))}, 99_999),
        ("properties", {"properties": {f"p{i}": {} for i in range(50_000)}}, {}),
        (
            "patterns",  # every key against every pattern, twice
            {
                "patternProperties": {f"^x{i}$": {} for i in range(1_000)},
                "additionalProperties": {},
            },
            {f"k{i}": 0 for i in range(10)},
        ),
    ],
)
def test_long_keywords_on_many_items_meet_the_work_bound(
    sqlite_api: Api, keyword: str, items: dict[str, Any], value: Any
) -> None:
    response = quality(sqlite_api, {"properties": {"a": {"items": items}}}, [value] * 100)
    assert response.status_code == 422, response.text[:300]
    assert "validating needs more than" in response.json()["error"]["message"]


def test_ordinary_keywords_are_not_refused(sqlite_api: Api) -> None:
    colours = {"enum": ["red", "green", "blue", *(f"c{i}" for i in range(40))]}
    schema = {"properties": {"a": {"items": colours}}}
    response = quality(sqlite_api, schema, ["red", "blue"] * 200)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["results"][0]["json_valid"] is True
