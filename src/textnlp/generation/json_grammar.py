"""A JSON Schema as a GBNF grammar, so that llama.cpp decodes only JSON of the schema's shape.

The grammar helps; it is not the check. The caller still validates every answer against the
schema (``safe_schema``) and retries, so a grammar may admit more than the schema does
(``format``, ``pattern``, numeric bounds, lengths past ``MAX_REPEAT``...) and may admit less
(every property of an object is written, in order: an optional one may be present). What it
must never do is admit only invalid answers, so a schema that narrows values in a way not
followed here gets no grammar (``None``) and the retries do the work, as on backends without
grammars: ``allOf`` of several schemas, ``not``, ``if``, ``patternProperties``,
``propertyNames``, ``prefixItems``, ``contains``, ``dependentRequired``/``dependentSchemas``,
property counts the written properties break, ``required`` names with no schema, a ``$ref``
that is not local, or validation keywords beside a ``$ref``, ``anyOf`` or ``enum``.

Schemas come from users, so they are treated as hostile: names and values are written as
escaped literals, repetitions are bounded, and a grammar longer than ``MAX_GRAMMAR`` characters
is not made at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

#: The longest grammar made (characters); a bigger schema is left to the retries.
MAX_GRAMMAR = 24_000
#: Length and item bounds up to this are written into the grammar; larger ones are not.
MAX_REPEAT = 64
#: Keywords that only describe (or that the grammar may leave to the check: a superset).
_LOOSE = frozenset({
    "title", "description", "default", "examples", "$comment", "$schema", "$id", "$defs",
    "definitions", "readOnly", "writeOnly", "deprecated", "format", "pattern", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems",
    "contentMediaType", "contentEncoding",
})  # fmt: skip
#: Keywords that narrow values in ways the grammar does not follow.
_NARROWING = frozenset({
    "not", "if", "then", "else", "patternProperties", "propertyNames", "prefixItems",
    "contains", "minContains", "maxContains", "unevaluatedItems", "dependentRequired",
    "dependentSchemas", "dependencies", "$dynamicRef", "$recursiveRef",
})  # fmt: skip

_BASE = r"""ws ::= [ \t\n]{0,8}
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
string ::= "\"" char* "\""
integer ::= "-"? ("0" | [1-9] [0-9]{0,17})
number ::= integer ("." [0-9]{1,17})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws (string ws ":" ws value ws ("," ws string ws ":" ws value ws)*)? "}"
array ::= "[" ws (value ws ("," ws value ws)*)? "]"
"""


class _Unsupported(Exception):
    """The schema narrows values in a way the grammar does not follow."""


def schema_grammar(schema: Mapping[str, Any] | None) -> str | None:
    """The GBNF grammar of a JSON object valid against ``schema`` (any object when None), or
    None when ``schema`` uses what the grammar does not follow or its grammar is too long."""
    if schema is None:
        return _BASE + "root ::= ws object ws\n"
    try:
        text = json.dumps(schema)  # the properties' order is the grammar's: not sorted
    except (TypeError, ValueError):  # keys of mixed types (YAML): made uncached
        return _grammar(schema)
    return _cached_grammar(text)


@lru_cache(maxsize=64)
def _cached_grammar(text: str) -> str | None:
    """A record after another asks for its template's grammar: made once."""
    return _grammar(json.loads(text))


def _grammar(schema: Mapping[str, Any]) -> str | None:
    try:
        builder = _Builder(schema)
        if not builder.is_object(schema):
            return None  # the answer is one JSON object (``extract_json_object``)
        return builder.text(f"root ::= ws {builder.expression(schema)} ws")
    except (_Unsupported, RecursionError):
        return None


class _Builder:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.rules: dict[str, str] = {}  # name: body
        self.names: dict[str, str] = {}  # body: name (one rule per distinct body)
        self.refs: dict[str, str] = {}  # $ref: its rule's name
        #: The $refs being built since the last character the grammar consumed: meeting one
        #: again would be a left-recursive rule, which llama.cpp refuses.
        self.unconsumed: set[str] = set()
        self.size = len(_BASE)

    def text(self, root_rule: str) -> str:
        rules = "".join(f"{name} ::= {body}\n" for name, body in self.rules.items())
        return _BASE + rules + root_rule + "\n"

    def rule(self, body: str) -> str:
        if body not in self.names:
            self.names[body] = self._add(f"r{len(self.rules)}", body)
        return self.names[body]

    def _add(self, name: str, body: str) -> str:
        self.rules[name] = body
        self.size += len(name) + len(body) + 6
        if self.size > MAX_GRAMMAR:
            raise _Unsupported("the grammar would be too long")
        return name

    def is_object(self, schema: Any) -> bool:
        """Whether ``schema`` admits JSON objects only (through $refs and a one-schema allOf)."""
        for _ in range(16):
            if isinstance(schema, Mapping) and "$ref" in schema:
                schema = self._target(schema["$ref"])
            elif isinstance(schema, Mapping) and "allOf" in schema:
                parts = schema["allOf"]
                schema = parts[0] if isinstance(parts, list) and len(parts) == 1 else None
            else:
                break
        if not isinstance(schema, Mapping) or set(schema) & {"anyOf", "oneOf", "enum", "const"}:
            return False
        return self._types(schema) == ["object"]

    # -- schemas -----------------------------------------------------------------------------
    def expression(self, schema: Any) -> str:
        """A GBNF expression (a rule's name or a literal) of the values ``schema`` admits."""
        if schema is True or schema == {}:
            return "value"
        if not isinstance(schema, Mapping):
            raise _Unsupported("a schema that admits nothing")
        keys = set(schema)
        if keys & _NARROWING:
            raise _Unsupported(", ".join(sorted(keys & _NARROWING)))
        for keyword in ("$ref", "const", "enum", "anyOf", "oneOf", "allOf"):
            if keyword in schema:
                return self._alone(keyword, schema)
        alternatives = [self._typed(kind, schema) for kind in self._types(schema)]
        return alternatives[0] if len(alternatives) == 1 else self.rule(" | ".join(alternatives))

    def _alone(self, keyword: str, schema: Mapping[str, Any]) -> str:
        """A keyword that stands for the whole schema: beside it, only loose keywords (a type
        beside ``const`` or ``enum`` too: their values are checked after)."""
        allowed = _LOOSE | {keyword} | ({"type"} if keyword in ("const", "enum") else set())
        if set(schema) - allowed:
            raise _Unsupported(f"keywords beside {keyword}")
        value = schema[keyword]
        if keyword == "$ref":
            return self._ref(value)
        if keyword == "const":
            return _literal(_json(value))
        if not isinstance(value, list) or not value:
            raise _Unsupported(f"{keyword} is not a non-empty list")
        if keyword == "enum":
            return self.rule(" | ".join(dict.fromkeys(_literal(_json(v)) for v in value)))
        if keyword == "allOf" and len(value) != 1:
            raise _Unsupported("allOf of several schemas")
        return self.rule(" | ".join(dict.fromkeys(self.expression(v) for v in value)))

    @staticmethod
    def _types(schema: Mapping[str, Any]) -> list[str]:
        kind = schema.get("type")
        if kind is None:
            if "properties" in schema or "additionalProperties" in schema:
                return ["object"]
            return ["array"] if "items" in schema else ["any"]
        kinds = [kind] if isinstance(kind, str) else kind
        if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
            raise _Unsupported("type")
        return list(dict.fromkeys(kinds))

    def _typed(self, kind: str, schema: Mapping[str, Any]) -> str:
        if kind in ("boolean", "null", "number", "integer"):
            return kind
        if kind == "any":
            return "value"
        if kind == "string":
            return self._string(schema)
        if kind not in ("array", "object"):
            raise _Unsupported(f"type {kind!r}")
        saved, self.unconsumed = self.unconsumed, set()  # "[" or "{" comes first
        try:
            return self._array(schema) if kind == "array" else self._object(schema)
        finally:
            self.unconsumed = saved

    def _string(self, schema: Mapping[str, Any]) -> str:
        low, high = _bounds(schema, "minLength", "maxLength")
        if (low, high) == (0, None):
            return "string"
        return self.rule(f'"\\"" char{_repeat(low, high)} "\\""')

    def _array(self, schema: Mapping[str, Any]) -> str:
        item = self.expression(schema.get("items", True))
        low, high = _bounds(schema, "minItems", "maxItems")
        if high == 0:
            return self.rule('"[" ws "]"')
        more = f'("," ws {item} ws){_repeat(max(low - 1, 0), None if high is None else high - 1)}'
        items = f"{item} ws {more}"
        return self.rule(f'"[" ws {items} "]"' if low else f'"[" ws ({items})? "]"')

    def _object(self, schema: Mapping[str, Any]) -> str:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, Mapping) or not isinstance(required, list):
            raise _Unsupported("properties or required")
        if not all(isinstance(name, str) and name in properties for name in required):
            raise _Unsupported("a required property with no schema")
        low, high = _bounds(schema, "minProperties", "maxProperties", cap=False)
        if not low <= len(properties) <= (len(properties) if high is None else high):
            raise _Unsupported("minProperties or maxProperties")
        extra = schema.get("additionalProperties", True)
        if not properties:
            if extra is False:
                return self.rule('"{" ws "}"')
            value = self.expression(extra)
            if value == "value":
                return "object"
            pair = f'string ws ":" ws {value} ws'
            return self.rule(f'"{{" ws ({pair} ("," ws {pair})*)? "}}"')
        pairs = [
            f'{_literal(_json(str(name)))} ws ":" ws {self.expression(sub)} ws'
            for name, sub in properties.items()
        ]
        return self.rule('"{" ws ' + ' "," ws '.join(pairs) + ' "}"')

    def _ref(self, ref: Any) -> str:
        if not isinstance(ref, str):
            raise _Unsupported("a $ref that is not a string")
        if ref in self.unconsumed:
            raise _Unsupported("a $ref that refers to itself before any character")
        if ref not in self.refs:
            target = self._target(ref)
            name = self.refs[ref] = f"ref{len(self.refs)}"
            self.unconsumed.add(ref)
            try:
                self._add(name, self.expression(target))
            finally:
                self.unconsumed.discard(ref)
        return self.refs[ref]

    def _target(self, ref: Any) -> Any:
        """The subschema a local ``$ref`` (``#``, ``#/$defs/...``) points to."""
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise _Unsupported("a $ref that is not local")
        target: Any = self.root
        for part in ref[2:].split("/") if ref != "#" else []:
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or key not in target:
                raise _Unsupported(f"$ref {ref} points nowhere")
            target = target[key]
        return target


def _bounds(
    schema: Mapping[str, Any], low_key: str, high_key: str, *, cap: bool = True
) -> tuple[int, int | None]:
    """(low, high) of a count; with ``cap``, bounds past ``MAX_REPEAT`` are left to the check
    (the grammar then admits more)."""
    low, high = schema.get(low_key, 0), schema.get(high_key)
    if not _count(low) or (high is not None and not _count(high)):
        raise _Unsupported(f"{low_key} or {high_key}")
    if high is not None and high < low:
        raise _Unsupported(f"{high_key} below {low_key}")
    if not cap:
        return low, high
    return min(low, MAX_REPEAT), (high if high is not None and high <= MAX_REPEAT else None)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _repeat(low: int, high: int | None) -> str:
    if high is None:
        return "*" if low == 0 else f"{{{low},}}"
    return f"{{{low},{high}}}"


def _json(value: Any) -> str:
    """``value`` as compact JSON text; a lone surrogate (not UTF-8) cannot be written."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    try:
        text.encode()
    except UnicodeEncodeError:
        raise _Unsupported("a lone surrogate") from None
    return text


def _literal(text: str) -> str:
    """``text`` as a GBNF string literal: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
