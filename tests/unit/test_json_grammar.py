"""``schema_grammar``'s choices without a model: what gets a grammar, what is left to the
retries, and bounds that hostile schemas cannot push (llama.cpp's own parser and the embedded
model check the grammars themselves in ``tests/integration/test_json_grammar.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textnlp.generation.json_grammar import MAX_GRAMMAR, MAX_REPEAT, _literal, schema_grammar

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name"],
}


def test_an_object_schema_gets_a_grammar_with_its_names_and_bounds() -> None:
    grammar = schema_grammar(PERSON)
    assert grammar is not None
    assert '"\\"name\\""' in grammar and '"\\"age\\""' in grammar
    assert "char{0,20}" in grammar
    assert grammar.count("root ::=") == 1


def test_no_schema_is_any_json_object() -> None:
    grammar = schema_grammar(None)
    assert grammar is not None and grammar.rstrip().endswith("root ::= ws object ws")


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "string"}},  # the answer is an object
        {"type": ["object", "null"]},
        {"anyOf": [{"type": "object"}, {"type": "string"}]},
        {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
        {"type": "object", "properties": {"a": {"type": "string"}}, "patternProperties": {}},
        {"type": "object", "properties": {"a": {"type": "string"}}, "maxProperties": 0},
        {"type": "object", "properties": {}, "required": ["ghost"]},
        {"type": "object", "properties": {"a": {"allOf": [{"type": "string"}, {"maxLength": 3}]}}},
        {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/x", "minLength": 2}}},
        {"type": "object", "properties": {"a": False}},
        {"type": "object", "properties": {"a": {"type": "string", "maxLength": "ten"}}},
        {"type": "object", "properties": {"a": {"type": "string", "minLength": 5, "maxLength": 2}}},
        {"type": "object", "properties": {"a": {"enum": ["\ud800"]}}},  # not UTF-8
        # left recursion: llama.cpp refuses a rule that can begin with itself
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
         "type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}},
    ],
)  # fmt: skip
def test_schemas_the_grammar_does_not_follow_are_left_to_the_retries(schema: dict) -> None:
    assert schema_grammar(schema) is None


def test_recursion_through_a_bracket_is_a_rule_that_refers_to_itself() -> None:
    tree = {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
            }
        },
    }
    grammar = schema_grammar(tree)
    assert grammar is not None
    (rule,) = [line for line in grammar.splitlines() if line.startswith("ref0 ::=")]
    body = rule.split("::=", 1)[1].split()
    assert body == ["r1"]  # the node object; its children array refers back to ref0
    assert "ref0" in next(line for line in grammar.splitlines() if line.startswith("r0 ::="))


def test_bounds_past_the_cap_are_left_to_the_check() -> None:
    schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 5000},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 100_000},
            "few": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3},
        },
    }
    grammar = schema_grammar(schema)
    assert grammar is not None and len(grammar) < 4_000
    assert "char{1,}" in grammar and "5000" not in grammar and "100000" not in grammar
    assert '("," ws integer ws){1,2}' in grammar
    assert f"{{0,{MAX_REPEAT + 1}}}" not in grammar


def test_a_grammar_too_long_is_not_made() -> None:
    values = [f"value number {i} " * 3 for i in range(2_000)]
    schema = {"type": "object", "properties": {"a": {"enum": values}}}
    assert schema_grammar(schema) is None
    few = {"type": "object", "properties": {"a": {"enum": values[:20]}}}
    grammar = schema_grammar(few)
    assert grammar is not None and len(grammar) <= MAX_GRAMMAR


def test_literals_escape_quotes_backslashes_and_control_characters() -> None:
    assert _literal('a"b\\c') == '"a\\"b\\\\c"'
    assert _literal("line\nbreak\x7f") == '"line\\x0Abreak\\x7F"'
    assert _literal("café ✓") == '"café ✓"'


KEYWORDS = ["type", "properties", "items", "enum", "const", "$ref", "anyOf", "required",
            "maxLength", "minItems", "additionalProperties", "$defs", "allOf", "oneOf"]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYWORDS), json_values, max_size=5))
def test_any_schema_gives_a_bounded_grammar_or_none(schema: dict) -> None:
    grammar = schema_grammar({"type": "object", "properties": {"a": schema}})
    assert grammar is None or len(grammar) <= MAX_GRAMMAR + 500
