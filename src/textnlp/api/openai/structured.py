"""``response_format``: JSON answers, checked, from every backend.

``json_object`` and ``json_schema`` are honoured as templates honour their JSON outputs. The
llama.cpp models decode under the format's grammar (``json_grammar``: any JSON object, or the
schema's shape where it can follow the schema), so their answers are JSON from the first
token; the others are asked for JSON in words. Either way each choice's text must hold a JSON
object (``extract_json_object``: models wrap it in prose or code fences) that satisfies the schema
(``safe_schema``, which checks users' schemas: RE2 regexes, no fetched ``$ref``, bounded work,
and asserts the string formats OpenAI enforces: date-time, date, duration, email, uuid...);
a choice that does not is asked again with another seed, up to ``generation.json_retries``
more times (at temperature 0 a retry would repeat the answer, so there is none). The answer's
content is the object alone, serialised as JSON. Every attempt is charged and counted in
``usage``, as it was generated.

Honoured for every model, streamed too (the stream then carries the checked object in one
chunk: it cannot be checked before it is complete). Refused with OpenAI's error shape (400):

- ``json_object`` when no message contains the word "JSON" (OpenAI's own rule: a model not
  told to write JSON may write whitespace until ``max_tokens``);
- a ``json_schema`` whose ``schema`` ``safe_schema`` refuses, or whose root is not an object,
  or that no answer can satisfy along what every answer must hold (``_contradiction``: bounds
  no value meets, a required property whose local ``$ref`` leads back to itself);
- when the last attempt of every failed choice was cut at ``max_tokens`` (``param:
  max_tokens``: raise it);
- when the request has ``stop`` sequences, the model decoded under the format's grammar, and
  the last attempt of every failed choice ended without reaching ``max_tokens`` (``param:
  stop``): a stop sequence the JSON contains cut it (a grammar-bound model cannot end before
  its object does otherwise; one without a grammar may, and that is the model's 502).

When the attempts end on answers that are complete but not valid, the answer is 502
(``backend_error``): the model could not do it, the request was fine.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import unquote

from textnlp.api.schemas import CompletionChoice, CompletionResponse, CompletionUsage
from textnlp.api.serving import CompletionsServing
from textnlp.domain import ChatMessage, GenerationRequest
from textnlp.errors import BackendError, InvalidParameter
from textnlp.generation.json_grammar import schema_grammar
from textnlp.services.openai_requests import (
    ChatCompletionRequest,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
)
from textnlp.strict_json import extract_json_object
from textnlp.validation.safe_schema import SafeSchema, compiled, instance_problem


@dataclass(frozen=True)
class JsonFormat:
    """What a JSON answer must satisfy: an object, and ``schema`` when given."""

    schema: SafeSchema | None
    source: dict[str, Any] | None
    #: The GBNF grammar of the answers (None: the schema uses what the grammar cannot follow).
    grammar: str | None

    def instruction(self) -> str:
        if self.source is None:
            return "Answer with one JSON object only."
        return "Answer with one JSON object only, valid against this JSON Schema:\n" + json.dumps(
            self.source, ensure_ascii=False
        )

    def parse(self, text: str) -> str:
        """The JSON text of the object in ``text``; ``ValueError`` saying why there is none."""
        data = extract_json_object(text)
        if self.schema is None:
            problem = instance_problem(data)
            if problem is not None:
                raise ValueError(problem)
        else:
            error = self.schema.first_error(data)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "object"
                raise ValueError(f"schema violation at {where}: {error.message}")
        return json.dumps(data, ensure_ascii=False)


def json_format(body: ChatCompletionRequest) -> JsonFormat | None:
    """The JSON ``body`` asks for (None: text); 400 for a format that cannot be served."""
    fmt = body.response_format
    if isinstance(fmt, JsonObjectFormat):
        if not any("json" in _text(m.content).lower() for m in body.messages):
            raise InvalidParameter(
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'.",
                parameter="messages",
            )
        return JsonFormat(None, None, schema_grammar(None))
    if isinstance(fmt, JsonSchemaResponseFormat):
        source = fmt.json_schema.schema_ or {"type": "object"}
        root = source.get("type")
        if root is not None and root != "object":
            raise InvalidParameter(
                "response_format.json_schema.schema: the root must be an object",
                parameter="response_format",
            )
        try:
            schema = compiled(source)
            schema.first_error({})  # a $ref to nowhere is refused now, not after generating
        except InvalidParameter as exc:
            raise InvalidParameter(exc.message, parameter="response_format") from None
        contradiction = _contradiction(source, "schema")
        if contradiction is not None:  # no answer can pass: a 400, not a 502 after retries
            raise InvalidParameter(
                f"response_format.json_schema.{contradiction}: no value can satisfy it",
                parameter="response_format",
            )
        return JsonFormat(schema, source, schema_grammar(source))
    return None


_NUMBERS = frozenset({"number", "integer"})
#: Bounds whose lower one above the upper one leaves no value (both inclusive, else strict) of
#: the types they bind; a value of another type meets them (JSON Schema's keywords apply to
#: their own types only).
_BOUNDS = [
    ("minimum", "maximum", False, _NUMBERS),
    ("exclusiveMinimum", "maximum", True, _NUMBERS),
    ("minimum", "exclusiveMaximum", True, _NUMBERS),
    ("exclusiveMinimum", "exclusiveMaximum", True, _NUMBERS),
    ("minLength", "maxLength", False, frozenset({"string"})),
    ("minItems", "maxItems", False, frozenset({"array"})),
    ("minProperties", "maxProperties", False, frozenset({"object"})),
]


def _contradiction(schema: Any, where: str) -> str | None:
    """Where ``schema`` asks for what no value has (``minimum`` over ``maximum``, an empty
    ``enum``, a required property whose local ``$ref`` leads back to itself...), along what
    every answer must hold: the root, its required properties, the items of a non-empty array,
    ``allOf``, local ``$ref``s. (A contradiction in one branch of an ``anyOf`` is no
    contradiction of the whole; what this cannot see the retries still meet, a 502.)"""
    return _Obligations(schema).find(schema, where, answer=True, chain=frozenset())


class _Obligations:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.expanded: set[str] = set()  # each $ref followed once: the walk ends
        # Beside an $id, where a reference points depends on its place: none are followed.
        self.local = not _holds_id(root)

    def find(self, schema: Any, where: str, *, answer: bool, chain: frozenset[str]) -> str | None:
        """``chain``: the $refs followed along what every answer must hold (a value that may
        be of another type than a keyword binds escapes it, and is not followed). One of them
        met again is an obligation without end: no finite JSON value meets it."""
        if schema is False:
            return where
        if not isinstance(schema, dict):
            return None
        for low, high, strict, kinds in _BOUNDS:
            a, b = schema.get(low), schema.get(high)
            crossed = _number(a) and _number(b) and (a >= b if strict else a > b)
            if crossed and _only(schema, kinds, answer=answer):
                return f"{where}: {low} {a} and {high} {b}"
        if schema.get("enum") == []:
            return f"{where}: enum []"
        found = self._ref(schema.get("$ref"), where, chain)
        properties = schema.get("properties")
        required = schema.get("required")
        # ``required`` binds objects and ``minItems`` arrays only: a value that may be of
        # another type escapes them, and nothing in them is what every answer must hold.
        objects = _only(schema, frozenset({"object"}), answer=answer)
        if found is None and objects and isinstance(properties, dict):
            for name in required if isinstance(required, list) else []:
                if isinstance(name, str) and name in properties:
                    at = f"{where}.properties.{name}"
                    found = found or self.find(properties[name], at, answer=False, chain=chain)
        min_items = schema.get("minItems")
        arrays = _only(schema, frozenset({"array"}), answer=answer)
        if found is None and arrays and _number(min_items) and min_items >= 1:
            found = self.find(schema.get("items"), f"{where}.items", answer=False, chain=chain)
        for i, member in enumerate(schema.get("allOf") or []):
            at = f"{where}.allOf.{i}"
            found = found or self.find(member, at, answer=answer, chain=chain)
        return found

    def _ref(self, ref: Any, where: str, chain: frozenset[str]) -> str | None:
        if not self.local or not isinstance(ref, str) or not ref.startswith("#"):
            return None
        if ref in chain:
            return f"{where}: $ref {ref} requires itself without end"
        if ref in self.expanded:
            return None
        self.expanded.add(ref)
        target: Any = self.root
        for part in ref[2:].split("/") if ref != "#" else []:
            key = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            elif isinstance(target, dict) and key in target:
                target = target[key]
            else:
                return None  # safe_schema refuses a $ref to nowhere
        return self.find(target, f"{where}.$ref", answer=False, chain=chain | {ref})


def _only(schema: dict[str, Any], kinds: frozenset[str], *, answer: bool) -> bool:
    """Whether every value ``schema`` admits is of ``kinds`` by its ``type`` (the answer is an
    object whatever its schema says: the root must be one); no ``type`` admits every kind."""
    if answer:
        return "object" in kinds
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared in kinds
    if isinstance(declared, list) and declared:
        return all(isinstance(kind, str) and kind in kinds for kind in declared)
    return False


def _holds_id(schema: Any) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$id" in node:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(part.text or "" for part in content)
    return content or ""


def instructed(messages: list[ChatMessage], fmt: JsonFormat) -> list[ChatMessage]:
    """``messages`` with the format's instruction in the system message (added when none)."""
    if fmt.source is None:  # json_object: the messages already ask for JSON
        return messages
    if messages and messages[0].role == "system":
        first = messages[0]
        content = f"{first.content}\n\n{fmt.instruction()}"
        return [ChatMessage(role="system", content=content), *messages[1:]]
    return [ChatMessage(role="system", content=fmt.instruction()), *messages]


async def complete_json(
    serve: CompletionsServing,
    model_id: str,
    requests: list[GenerationRequest],
    fmt: JsonFormat,
    owner: str,
) -> CompletionResponse:
    """Each choice's valid JSON (see the module's docstring), in one completions answer."""
    retries = serve.service.settings.generation.json_retries
    sampled = requests[0].params.temperature > 0
    attempts = 1 + (retries if sampled else 0)
    found: dict[int, CompletionChoice] = {}
    last: dict[int, CompletionChoice] = {}
    prompt_tokens = completion_tokens = 0
    pending = list(range(len(requests)))
    errors: dict[int, str] = {}
    if fmt.grammar is not None:  # backends without grammars ignore it
        requests = [r.model_copy(update={"grammar": fmt.grammar}) for r in requests]
    for attempt in range(attempts):
        batch = [_reseeded(requests[i], attempt, i) for i in pending]
        response = await serve.complete(model_id, batch, owner=owner)
        prompt_tokens += response.usage.prompt_tokens
        completion_tokens += response.usage.completion_tokens
        still = []
        for index, choice in zip(pending, response.choices, strict=True):
            last[index] = choice
            try:
                text = fmt.parse(choice.text)
            except ValueError as exc:
                errors[index] = str(exc)
                still.append(index)
                continue
            found[index] = CompletionChoice(index=index, text=text, finish_reason="stop")
        pending = still
        if not pending:
            break
    if pending:
        bound = fmt.grammar is not None and (await serve.service.pool.get(model_id)).grammars
        stops = bound and bool(requests[0].params.stop)
        _refuse(model_id, [last[i] for i in pending], errors[pending[0]], attempts, stops)
    return CompletionResponse(
        id=response.id,
        model=model_id,
        choices=[found[i] for i in range(len(requests))],
        usage=CompletionUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
    )


def _reseeded(request: GenerationRequest, attempt: int, index: int) -> GenerationRequest:
    if attempt == 0:
        return request
    seed = request.params.seed
    # A fixed seed stays reproducible (the same retries follow); none gets a random one.
    new = random.getrandbits(32) if seed is None else (seed + 7919 * attempt + index) % 2**32
    return request.model_copy(update={"params": request.params.model_copy(update={"seed": new})})


def _refuse(
    model_id: str, last: list[CompletionChoice], error: str, attempts: int, stops: bool
) -> None:
    if all(choice.finish_reason == "length" for choice in last):
        raise InvalidParameter(
            "the answer reached max_tokens before its JSON object ended; raise max_tokens",
            parameter="max_tokens",
        )
    if stops and all(choice.finish_reason == "stop" for choice in last):
        raise InvalidParameter(
            "the answer ended at a stop sequence before its JSON object did; send no stop, "
            "or one the JSON cannot contain",
            parameter="stop",
        )
    raise BackendError(
        f"the model gave no valid JSON in {attempts} attempt(s): {error}", model=model_id
    )
