"""A user's regex never reaches Python's backtracking ``re`` (ReDoS).

``^(a+)+$`` against 40 ``a``s and a ``!`` takes Python's ``re`` hours, holding the GIL: the
whole API would stall. Rather than timing the request, the tests trap ``re`` where jsonschema
calls it: any backtracking match fails the request (a 500), so answering at all proves the
linear-time engine ran. Patterns that engine cannot run are refused with a 422.
"""

from __future__ import annotations

from typing import Any

import jsonschema._keywords
import jsonschema._utils
import pytest

from tests.security.conftest import Api

QUALITY = "/api/v1/validate/quality"
EVIL = "^(a+)+$"


class BacktrackingTrap:
    """Stands for ``re`` inside jsonschema: any match there is a ReDoS waiting to happen."""

    def __getattr__(self, name: str) -> Any:
        def trapped(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"re.{name} ran a user's pattern: {args[:1]!r}")

        return trapped


@pytest.fixture
def trapped_re(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (jsonschema._keywords, jsonschema._utils):
        monkeypatch.setattr(module, "re", BacktrackingTrap())


def quality(api: Api, schema: dict[str, Any], text: str = '"a"') -> Any:
    body = {"texts": [text], "json_schema": schema}
    return api.client.post(QUALITY, json=body, headers=api.headers("alice"))


NAME = "a" * 40 + "!"  # the text that makes ^(a+)+$ backtrack
VALUE = '{"name": "' + NAME + '"}'  # ...as a value
KEY = '{"' + NAME + '": 1}'  # ...as a key


@pytest.mark.timeout(120)  # on a backtracking engine these requests would take hours
@pytest.mark.parametrize(
    ("schema", "text"),
    [
        ({"properties": {"name": {"type": "string", "pattern": EVIL}}}, VALUE),
        # No key matches, so nothing else is checked (but the pattern ran on the key).
        ({"patternProperties": {EVIL: {"type": "string"}}, "minProperties": 2}, KEY),
        ({"patternProperties": {EVIL: {}}, "additionalProperties": False}, KEY),
        ({"patternProperties": {EVIL: {}}, "unevaluatedProperties": False}, KEY),
        ({"$defs": {"n": {"pattern": EVIL}}, "properties": {"name": {"$ref": "#/$defs/n"}}}, VALUE),
        # A subschema naming another draft must not switch to that draft's stock validator.
        (
            {
                "properties": {
                    "name": {"$schema": "http://json-schema.org/draft-07/schema#", "pattern": EVIL}
                }
            },
            VALUE,
        ),
    ],
    ids=["pattern", "patternProperties", "additional", "unevaluated", "via $ref", "draft-07"],
)
def test_catastrophic_patterns_run_in_linear_time(
    sqlite_api: Api, trapped_re: None, schema: dict[str, Any], text: str
) -> None:
    response = quality(sqlite_api, schema, text)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["json_valid"] is False


@pytest.mark.parametrize(
    "schema",
    [
        {"pattern": "(a)\\1"},  # a backreference
        {"pattern": "a(?=b)"},  # lookahead
        {"patternProperties": {"(?<!x)y": {}}},  # lookbehind
        {"pattern": "a{1000}{1000}"},  # beyond the engine's memory budget
        {"properties": {"x": {"pattern": "("}}},  # not a regex at all
    ],
)
def test_patterns_the_engine_cannot_run_are_422(sqlite_api: Api, schema: dict[str, Any]) -> None:
    response = quality(sqlite_api, schema)
    assert response.status_code == 422, response.text
    assert "json_schema" in response.json()["error"]["message"]


def test_the_api_still_answers_after_them(sqlite_api: Api) -> None:
    quality(sqlite_api, {"pattern": EVIL}, '"' + "a" * 5000 + '!"')
    assert sqlite_api.client.get("/api/v1/admin/health").status_code in {200, 503}
