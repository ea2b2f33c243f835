"""Which ``response_format`` schemas are refused before any model runs: one that no answer can
satisfy along what every answer must hold, and never one that some answer can."""

from __future__ import annotations

from typing import Any

import pytest

from textnlp.api.openai.structured import json_format
from textnlp.errors import InvalidParameter
from textnlp.services.openai_requests import ChatCompletionRequest

IMPOSSIBLE = {"type": "integer", "minimum": 10, "maximum": 1}


def asking(schema: dict[str, Any]) -> ChatCompletionRequest:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    messages = [{"role": "user", "content": "JSON"}]
    body = {"model": "m", "messages": messages, "response_format": fmt}
    return ChatCompletionRequest.model_validate(body)


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": IMPOSSIBLE}, "required": ["a"]},
        {
            "properties": {"a": {"type": "string", "minLength": 3, "maxLength": 2}},
            "required": ["a"],
        },
        {
            "properties": {
                "a": {"type": ["number", "integer"], "exclusiveMinimum": 1, "exclusiveMaximum": 1}
            },
            "required": ["a"],
        },
        {
            "properties": {"a": {"type": "array", "items": IMPOSSIBLE, "minItems": 1}},
            "required": ["a"],
        },
        {"properties": {"a": False}, "required": ["a"]},
        {"minProperties": 2, "maxProperties": 1},
        {"$defs": {"n": IMPOSSIBLE}, "properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["a"]},
        # Each object needs an object inside it, without end: no finite answer.
        {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
        {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {"next": {"$ref": "#/$defs/node"}},
                    "required": ["next"],
                }
            },
            "properties": {"head": {"$ref": "#/$defs/node"}},
            "required": ["head"],
        },
        {
            "$defs": {"n": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/n"}}},
            "properties": {"a": {"$ref": "#/$defs/n"}},
            "required": ["a"],
        },
    ],
)
def test_a_schema_no_answer_satisfies_is_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter, match="no value can satisfy it"):
        json_format(asking(schema))


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": IMPOSSIBLE}},  # a not required: {} satisfies it
        {"properties": {"a": {"anyOf": [IMPOSSIBLE, {"type": "string"}]}}, "required": ["a"]},
        {"properties": {"a": {"items": IMPOSSIBLE}}, "required": ["a"]},  # [] satisfies it
        {"properties": {"a": {"minimum": 1, "maximum": 1}}, "required": ["a"]},  # 1 does
        # Bounds bind their own type only: a value of another type meets them ({"a": "x"}).
        {"properties": {"a": {"minimum": 10, "maximum": 1}}, "required": ["a"]},
        {"properties": {"a": {"minLength": 3, "maxLength": 2}}, "required": ["a"]},
        {
            "properties": {"a": {"type": ["integer", "null"], "minimum": 10, "maximum": 1}},
            "required": ["a"],
        },
        {"properties": {"a": {"items": IMPOSSIBLE, "minItems": 1}}, "required": ["a"]},
        # "a" may be no object, so what it requires binds nothing ({"a": 1}).
        {
            "properties": {"a": {"properties": {"b": IMPOSSIBLE}, "required": ["b"]}},
            "required": ["a"],
        },
        # The root holds no type: "a" may be a number, {"a": 1} satisfies it.
        {"properties": {"a": {"$ref": "#"}}, "required": ["a"]},
        # The chain may end: {"a": null}.
        {
            "type": "object",
            "properties": {"a": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
            "required": ["a"],
        },
        # A tree: children may be [].
        {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#"}}},
            "required": ["children"],
        },
    ],
)
def test_a_schema_some_answer_satisfies_is_taken(schema: dict[str, Any]) -> None:
    assert json_format(asking(schema)) is not None


@pytest.mark.parametrize("grammar", [None, "root ::= object"])
async def test_a_stop_is_blamed_only_where_a_grammar_bound_the_answer(grammar: str | None) -> None:
    """A model without the format's grammar (transformers, a remote API; or a schema the
    grammar cannot follow) may end by itself before its JSON: that is the model's 502, not
    the request's ``stop`` (which it never met)."""
    from types import SimpleNamespace

    from textnlp.api.openai.structured import JsonFormat, complete_json
    from textnlp.api.schemas import CompletionChoice, CompletionResponse, CompletionUsage
    from textnlp.domain import GenerationParams, GenerationRequest
    from textnlp.errors import BackendError

    class Backend:
        grammars = True  # a llama.cpp model: it decodes under a grammar it is given

    async def backend(model_id: str) -> Backend:
        return Backend()

    class Serving:
        service = SimpleNamespace(
            settings=SimpleNamespace(generation=SimpleNamespace(json_retries=0)),
            pool=SimpleNamespace(get=backend),
        )

        async def complete(self, model_id: str, batch: list[Any], owner: str) -> Any:
            choice = CompletionChoice(index=0, text="I cannot answer that.", finish_reason="stop")
            usage = CompletionUsage(prompt_tokens=1, completion_tokens=1, total_tokens=2)
            return CompletionResponse(id="x", model=model_id, choices=[choice], usage=usage)

    params = GenerationParams(max_tokens=50, temperature=0.7, stop=("###",))
    request = GenerationRequest.chat("Answer in JSON.", params=params)
    fmt = JsonFormat(schema=None, source=None, grammar=grammar)
    expected: type[Exception] = InvalidParameter if grammar else BackendError
    with pytest.raises(expected):
        await complete_json(Serving(), "m", [request], fmt, "owner")  # type: ignore[arg-type]
