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
        {"properties": {"a": {"minLength": 3, "maxLength": 2}}, "required": ["a"]},
        {"properties": {"a": {"exclusiveMinimum": 1, "exclusiveMaximum": 1}}, "required": ["a"]},
        {"properties": {"a": {"items": IMPOSSIBLE, "minItems": 1}}, "required": ["a"]},
        {"properties": {"a": False}, "required": ["a"]},
        {"minProperties": 2, "maxProperties": 1},
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
    ],
)
def test_a_schema_some_answer_satisfies_is_taken(schema: dict[str, Any]) -> None:
    assert json_format(asking(schema)) is not None
