"""``safe_regex`` and ``safe_schema``: RE2 for every pattern, nothing fetched, bounded work."""

from __future__ import annotations

import urllib.request
from typing import Any

import jsonschema._keywords
import jsonschema._utils
import pytest

from textnlp.errors import InvalidParameter
from textnlp.validation.quality import check_json
from textnlp.validation.safe_regex import UnsafePattern, compile_pattern, search
from textnlp.validation.safe_schema import (
    MAX_DEPTH,
    SafeSchema,
    SafeValidator,
    compiled,
    instance_problem,
)

EVIL = "^(a+)+$"
BACKTRACKS = "a" * 60 + "!"  # hours for a backtracking engine


class Trap:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"re.{name} was used on a user's pattern")


@pytest.fixture(autouse=True)
def no_backtracking_re(monkeypatch: pytest.MonkeyPatch) -> None:
    """jsonschema's ``re`` is a trap here: the safe path must never reach it."""
    for module in (jsonschema._keywords, jsonschema._utils):
        monkeypatch.setattr(module, "re", Trap())


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []

    def urlopen(url: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(url))
        raise AssertionError(f"fetched {url}")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return opened


def first(schema: dict[str, Any], instance: Any) -> str | None:
    error = SafeSchema(schema).first_error(instance)
    return None if error is None else error.message


# RE2 ---------------------------------------------------------------------------------------
def test_re2_matches_in_linear_time() -> None:
    assert search(EVIL, "a" * 60)
    assert not search(EVIL, BACKTRACKS)
    assert search(r"\d{3}-\d{4}", "call 555-1234")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a)\\1", "escape"),
        ("a(?=b)", "perl operator"),
        ("(?<!x)y", "perl operator"),
        ("a{1000}{1000}", "repetition"),
        ("(", "missing"),
        ("a" * 5000, "longer than"),
    ],
)
def test_patterns_re2_cannot_run_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(UnsafePattern, match=reason):
        compile_pattern(pattern)


# Regex keywords ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        ({"pattern": EVIL}, BACKTRACKS, False),
        ({"pattern": EVIL}, "aaaa", True),
        ({"patternProperties": {EVIL: {"type": "integer"}}}, {"aa": "x"}, False),
        ({"patternProperties": {EVIL: {}}, "additionalProperties": False}, {BACKTRACKS: 1}, False),
        ({"patternProperties": {EVIL: {}}, "additionalProperties": False}, {"aaa": 1}, True),
        ({"patternProperties": {EVIL: {}}, "unevaluatedProperties": False}, {BACKTRACKS: 1}, False),
        ({"patternProperties": {EVIL: {}}, "unevaluatedProperties": False}, {"aa": 1}, True),
        (
            {"allOf": [{"patternProperties": {"^x": {}}}], "unevaluatedProperties": False},
            {"xy": 1, "z": 2},
            False,
        ),
        (
            {"if": {"pattern": "^a"}, "then": {"maxLength": 2}, "else": {"pattern": EVIL}},
            "b!",
            False,
        ),
    ],
)
def test_regex_keywords_run_on_re2(schema: dict[str, Any], instance: Any, valid: bool) -> None:
    assert (first(schema, instance) is None) is valid


def test_a_subschema_of_another_draft_stays_on_the_safe_class() -> None:
    schema = {
        "properties": {
            "a": {"$schema": "http://json-schema.org/draft-07/schema#", "pattern": EVIL},
            "b": {"$schema": "https://json-schema.org/draft/2020-12/schema", "pattern": EVIL},
        }
    }
    assert "does not match" in (first(schema, {"a": BACKTRACKS}) or "")
    assert "does not match" in (first(schema, {"b": BACKTRACKS}) or "")
    validator = SafeValidator({})
    assert type(validator.evolve(schema=schema["properties"]["a"])) is SafeValidator


def test_unsafe_patterns_refuse_the_schema_with_its_location() -> None:
    with pytest.raises(InvalidParameter, match=r"properties\.name\.pattern.*RE2") as caught:
        SafeSchema({"properties": {"name": {"pattern": "(a)\\1"}}})
    assert caught.value.details == {"parameter": "json_schema"}
    with pytest.raises(InvalidParameter, match="RE2"):
        SafeSchema({"patternProperties": {"(?=x)": {}}})


def test_a_pattern_reached_only_through_a_ref_is_checked_when_used() -> None:
    # The meta-schema never looks inside "x-data"; the validator still runs RE2 there.
    schema = {"x-data": {"pattern": "(a)\\1"}, "$ref": "#/x-data"}
    with pytest.raises(InvalidParameter, match="RE2"):
        SafeSchema(schema).first_error("aa")


# References --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "http://127.0.0.1:9/schema.json"},
        {"$ref": "file:///etc/passwd"},
        {"$id": "http://example.com/root.json", "$ref": "other.json"},
        {"properties": {"a": {"$ref": "https://example.com/a.json"}}},
    ],
)
def test_remote_references_are_never_fetched(no_network: list[str], schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter, match="never fetched"):
        SafeSchema(schema).first_error({"a": 1})
    assert no_network == []


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "http://127.0.0.1:9/schema.json"}, "never fetched"),
        ({"properties": {"a": {"items": {"$ref": "#/$defs/gone"}}}}, "points at nothing"),
    ],
)
def test_an_unresolvable_reference_is_refused_when_compiled(
    no_network: list[str], schema: dict[str, Any], message: str
) -> None:
    """Not first by a value that reaches it: a recipe's llm column would have paid a model."""
    with pytest.raises(InvalidParameter, match=message):
        SafeSchema(schema)
    assert no_network == []
    # A "$ref" key in data ("const", "enum"...) is a value, not a reference.
    assert (
        first({"const": {"$ref": "http://example.com/x"}}, {"$ref": "http://example.com/x"}) is None
    )


def test_local_references_and_the_meta_schemas_resolve(no_network: list[str]) -> None:
    schema = {
        "$defs": {"n": {"type": "integer", "minimum": 0}},
        "properties": {"n": {"$ref": "#/$defs/n"}, "m": {"$ref": "#/properties/n"}},
    }
    assert first(schema, {"n": 1, "m": 2}) is None
    assert first(schema, {"m": -1}) is not None
    meta = {"$ref": "https://json-schema.org/draft/2020-12/schema"}
    assert first(meta, {"type": "string"}) is None
    assert no_network == []


# Bounds ------------------------------------------------------------------------------------
def nest(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"items": leaf} if isinstance(leaf, dict) else [leaf]
    return leaf


def test_depth_bounds() -> None:
    assert SafeSchema(nest(MAX_DEPTH - 1, {})) is not None
    with pytest.raises(InvalidParameter, match="deeper"):
        compiled(nest(MAX_DEPTH + 1, {}))
    assert instance_problem(nest(MAX_DEPTH, 1)) is None
    assert "deeper" in (instance_problem(nest(MAX_DEPTH + 1, 1)) or "")
    assert "deeper" in (first({"items": {"$ref": "#"}}, nest(MAX_DEPTH + 1, 1)) or "")


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"allOf": [{"$ref": "#"}], "unevaluatedProperties": False},
    ],
)
def test_reference_cycles_are_refused(schema: dict[str, Any]) -> None:
    # When the schema is built, not by each value after a model was paid to make it
    with pytest.raises(InvalidParameter, match="refers to itself"):
        SafeSchema(schema)


def test_a_recursion_through_the_value_is_no_cycle() -> None:
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    assert SafeSchema(tree).first_error({"children": [{"children": []}]}) is None


def test_exponential_schemas_stop_at_the_work_bound() -> None:
    defs: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(40)
    }
    defs["d40"] = {"type": "string"}
    with pytest.raises(InvalidParameter, match="steps"):
        SafeSchema({"$defs": defs, "$ref": "#/$defs/d0"}).first_error(1)


def test_lone_surrogates_in_a_json_value_are_an_error_not_a_crash() -> None:
    bad = {"\ud800": "x"}
    assert "Unicode" in (first({"patternProperties": {"a": {}}}, bad) or "")
    assert "Unicode" in (instance_problem(["ok", "\udfff"]) or "")


def test_compiled_caches_by_content() -> None:
    schema = {"type": "object", "properties": {"a": {"pattern": "^a"}}}
    assert compiled(schema) is compiled(dict(schema))
    assert compiled(compiled(schema)) is compiled(schema)


# Through the quality check ---------------------------------------------------------------
def test_check_json_uses_the_safe_path() -> None:
    assert (
        check_json('{"name": "' + BACKTRACKS + '"}', {"properties": {"name": {"pattern": EVIL}}})[0]
        is False
    )
    valid, error = check_json('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", None)
    assert valid is False and "nested" in (error or "")
    valid, error = check_json('{"a": ' * 100 + "1" + "}" * 100, None)
    assert valid is False and "deeper" in (error or "")


def test_expanded_size_counts_a_shared_part_each_time_it_appears() -> None:
    from textnlp.validation.safe_schema import expanded_size

    shared: list[object] = [[1], [2]]
    value = {"a": shared, "b": shared, "c": "text"}
    assert expanded_size(value, 100) == 1 + 2 * 3
    assert expanded_size(value, 6) is None
    assert expanded_size("scalar", 1) == 0
    looped: list[object] = []
    looped.append(looped)
    assert expanded_size(looped, 100) is None


def test_multiple_of_is_exact_whatever_the_numbers_size() -> None:
    """jsonschema divided in floats: a 400-digit integer by 0.1 raised OverflowError (the
    quality route's 500), and 0.3 was no multiple of 0.1."""
    tenth = compiled({"multipleOf": 0.1})
    assert tenth.first_error(int("9" * 400)) is None
    assert tenth.first_error(0.3) is None
    assert tenth.first_error(0.35) is not None
    huge = compiled({"multipleOf": int("1" + "0" * 400)})
    assert huge.first_error(1.5) is not None
    assert huge.first_error(int("1" + "0" * 401)) is None
    assert compiled({"multipleOf": 3}).first_error(True) is None  # not a number: not checked
