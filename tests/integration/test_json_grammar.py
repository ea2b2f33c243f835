"""``json_grammar``'s grammars against llama.cpp itself: its grammar parser takes them, its
grammar sampler walks valid JSON through them token by token (and stops invalid JSON), and the
embedded model decoding under them writes answers the schema accepts."""

from __future__ import annotations

import ctypes
import json
import math
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

import llama_cpp
import pytest
import pytest_asyncio
from pydantic import BaseModel, Field

from textnlp.backends.llamacpp import LlamaCppBackend, resolve_model_path
from textnlp.backends.registry import ModelCatalogue
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.generation.json_grammar import schema_grammar
from textnlp.strict_json import extract_json_object
from textnlp.validation.safe_schema import compiled


class Address(BaseModel):
    city: str = Field(max_length=24)
    country: Literal["FR", "DE", "JP"]


class Person(BaseModel):
    name: str = Field(max_length=24)
    age: int
    nickname: str | None = None
    tags: list[str] = Field(max_length=3)
    home: Address


# A linked list: recursion through an anyOf with null, as pydantic writes ``Item | None``.
LINKED = {
    "$ref": "#/$defs/item",
    "$defs": {
        "item": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "next": {"anyOf": [{"$ref": "#/$defs/item"}, {"type": "null"}]},
            },
        }
    },
}
HOSTILE_NAMES = {
    "type": "object",
    "properties": {'quo"te': {"type": "string"}, "back\\slash": {"type": "integer"},
                   "new\nline": {"type": "boolean"}, "naïve ✓": {"type": "null"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def vocab() -> Iterator[tuple[Any, llama_cpp.Llama]]:
    llm = llama_cpp.Llama(
        str(resolve_model_path("embedded:smollm2")), vocab_only=True, verbose=False
    )
    yield llama_cpp.llama_model_get_vocab(llm.model), llm
    llm.close()


def admits(vocab: tuple[Any, llama_cpp.Llama], grammar: str, text: str) -> bool:
    """Whether llama.cpp's grammar sampler lets the model write ``text``, then end."""
    handle, llm = vocab
    sampler = llama_cpp.llama_sampler_init_grammar(handle, grammar.encode(), b"root")
    assert sampler, "llama.cpp's parser refused the grammar"
    try:
        for token in [*llm.tokenize(text.encode(), add_bos=False), llm.token_eos()]:
            cell = llama_cpp.llama_token_data(id=token, logit=0.0, p=0.0)
            one = llama_cpp.llama_token_data_array(
                data=ctypes.pointer(cell), size=1, selected=-1, sorted=False
            )
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(one))
            if not math.isfinite(cell.logit):
                return False
            if token != llm.token_eos():
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


PERSON = {"name": "Ada", "age": 36, "nickname": None, "tags": ["math", "code"],
          "home": {"city": "London", "country": "FR"}}  # fmt: skip


def test_a_pydantic_schema_admits_its_instances_and_nothing_else(vocab: Any) -> None:
    grammar = schema_grammar(Person.model_json_schema())
    assert grammar is not None
    assert admits(vocab, grammar, json.dumps(PERSON))
    assert admits(vocab, grammar, json.dumps(PERSON, indent=1))
    assert admits(vocab, grammar, json.dumps({**PERSON, "nickname": 'A"dé'}))
    assert not admits(vocab, grammar, json.dumps({**PERSON, "age": "36"}))
    assert not admits(vocab, grammar, json.dumps({**PERSON, "tags": ["a", "b", "c", "d"]}))
    assert not admits(vocab, grammar, json.dumps({**PERSON, "name": "x" * 25}))
    bad_home = {**PERSON, "home": {"city": "Paris", "country": "US"}}
    assert not admits(vocab, grammar, json.dumps(bad_home))
    assert not admits(vocab, grammar, "Sure! " + json.dumps(PERSON))
    assert not admits(vocab, grammar, json.dumps(PERSON)[:-1])  # cut: no end yet


def test_a_recursive_schema_admits_any_depth(vocab: Any) -> None:
    grammar = schema_grammar(LINKED)
    assert grammar is not None
    chain = {"value": 1, "next": {"value": 2, "next": {"value": 3, "next": None}}}
    assert admits(vocab, grammar, json.dumps(chain))
    assert not admits(vocab, grammar, json.dumps({"value": 1, "next": 2}))


def test_hostile_property_names_are_literals(vocab: Any) -> None:
    grammar = schema_grammar(HOSTILE_NAMES)
    assert grammar is not None
    value = {'quo"te': "x", "back\\slash": 1, "new\nline": True, "naïve ✓": None}
    assert admits(vocab, grammar, json.dumps(value, ensure_ascii=False))


def test_any_object_and_large_bounds_parse(vocab: Any) -> None:
    any_object = schema_grammar(None)
    assert any_object is not None
    assert admits(vocab, any_object, '{"a": [1, 2.5e3, {"b": null}], "c": "d"}')
    assert not admits(vocab, any_object, "[1, 2]")
    huge = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "maxLength": 5000},
            "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 100000},
        },
    }
    grammar = schema_grammar(huge)
    assert grammar is not None
    assert admits(vocab, grammar, json.dumps({"text": "y" * 300, "items": list(range(100))}))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend() -> AsyncIterator[LlamaCppBackend]:
    spec = ModelCatalogue.load().get("smollm2-135m")
    async with LlamaCppBackend(spec, n_parallel=8) as engine:
        yield engine


class Review(BaseModel):
    product: str = Field(max_length=30)
    rating: Literal[1, 2, 3, 4, 5]
    sentiment: Literal["positive", "negative", "mixed"]
    pros: list[Annotated[str, Field(max_length=40)]] = Field(max_length=2)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_embedded_model_writes_valid_json_under_the_grammar(
    backend: LlamaCppBackend,
) -> None:
    schema = Review.model_json_schema()
    grammar = schema_grammar(schema)
    assert grammar is not None
    prompt = (
        "Write a short review of a kettle as a JSON object with the fields product, rating "
        "(1-5), sentiment and pros."
    )
    requests = [
        GenerationRequest.chat(
            prompt, params=GenerationParams(max_tokens=160, temperature=0.8, seed=seed)
        ).model_copy(update={"grammar": grammar})
        for seed in range(6)
    ]
    answers = await backend.generate(requests)
    for answer in answers:
        assert answer.finish_reason == "stop", answer.text
        value = extract_json_object(answer.text)
        assert compiled(schema).first_error(value) is None, answer.text
        assert answer.text.lstrip().startswith("{")  # no prose, no code fence
