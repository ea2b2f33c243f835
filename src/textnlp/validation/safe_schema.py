"""JSON Schema validation that a user's schema cannot turn against the server.

jsonschema's defaults trust the schema. Here a schema comes from any logged-in user (the
``validate/quality`` route) or a template, so these defaults change:

- **regexes** (``pattern``, ``patternProperties`` and what ``additionalProperties`` and
  ``unevaluatedProperties`` derive from it; ``format: regex`` when the schema is checked) run
  on RE2 (``safe_regex``): linear time, and a pattern RE2 cannot run refuses the schema;
- **references are never fetched**: the registry's ``retrieve`` refuses every URI, so
  ``#/...``, ``$defs``, ``$id``s inside the schema and the JSON Schema meta-schemas (bundled)
  resolve, and nothing else does (no network, no file, no fetched content in an error);
- **bounded work**: a schema and a JSON value are at most ``MAX_DEPTH`` levels deep, a
  reference cycle is refused instead of ending in ``RecursionError``, and one validation
  evaluates at most ``MAX_EVALUATIONS`` keywords (an exponential ``anyOf`` of ``$ref``s stops),
  a keyword with a long list or object (``enum``, ``properties``) or matching many keys with
  many patterns counting as several;
  ``uniqueItems`` finds a repeat in one pass (jsonschema compares unsortable items pairwise);
- **one dialect**: every subschema is validated as draft 2020-12 by this class, whatever its
  ``$schema`` says (jsonschema would switch to that draft's stock class, and to ``re``);
- **formats are asserted**, those OpenAI's structured outputs enforce (``VALUE_FORMATS``:
  date-time, time, date, duration, email, hostname, ipv4, ipv6, uuid), where jsonschema treats
  ``format`` as an annotation only; any other format stays an annotation.

A schema refused here raises ``InvalidParameter`` naming ``json_schema`` (HTTP 422, CLI exit
2); a JSON value breaking the schema is an error, as with jsonschema.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from fractions import Fraction
from functools import lru_cache
from typing import Any

import attrs
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from textnlp.errors import InvalidParameter
from textnlp.validation.safe_regex import UnsafePattern, compile_pattern

#: Levels of nesting a schema or a JSON value may have (arrays and objects).
MAX_DEPTH = 64
#: Keyword evaluations of one validation, ~20 µs each (2,000 rows of ten fields need ~10^4).
MAX_EVALUATIONS = 20_000
#: Members of a keyword's list or object that count as one more evaluation (``_cost``).
MEMBERS_PER_STEP = 20


def _refuse_retrieval(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs field, untyped here


_NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]
_budget: ContextVar[list[int]] = ContextVar("textnlp_schema_budget")


class _OverBudget(Exception):
    pass


# Regex keywords on RE2 -----------------------------------------------------------------------
def _matches(pattern: Any, text: str) -> bool:
    if not isinstance(pattern, str):
        raise UnsafePattern(f"pattern {pattern!r} is not a string")
    return compile_pattern(pattern).search(text) is not None


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_keys(instance: dict[str, Any], schema: Any) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in properties and not any(_matches(p, key) for p in patterns)
    ]


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(key) for key in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    invalid = [
        key
        for key in instance
        if key not in evaluated
        and not _valid(validator.descend(instance[key], unevaluated, path=key, schema_path=key))
    ]
    if invalid:
        listed = ", ".join(repr(key) for key in sorted(invalid))
        if unevaluated is False:
            yield ValidationError(f"Unevaluated properties are not allowed ({listed} unexpected)")
        else:
            yield ValidationError(
                f"Unevaluated properties are not valid under the schema ({listed})"
            )


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    """The keys some keyword of ``schema`` evaluated (jsonschema's own walk, with RE2)."""
    if validator.is_type(schema, "boolean"):
        return set()
    keys = _referenced_keys(validator, instance, schema)
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (subschema := schema.get(keyword)) is not None:
            keys |= {k for k, v in instance.items() if _valid(validator.descend(v, subschema))}
    for pattern in schema.get("patternProperties", {}):
        keys |= {key for key in instance if _matches(pattern, key)}
    for key, subschema in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys |= _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _valid(validator.descend(instance, subschema)):
                keys |= _evaluated_keys(validator, instance, subschema)
    return keys | _conditional_keys(validator, instance, schema)


def _referenced_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    keys: set[str] = set()
    for keyword in ("$ref", "$dynamicRef"):
        if (ref := schema.get(keyword)) is not None:
            resolved = validator._resolver.lookup(ref)
            child = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= _evaluated_keys(child, instance, resolved.contents)
    return keys


def _conditional_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    if "if" not in schema:
        return set()
    if validator.evolve(schema=schema["if"]).is_valid(instance):
        keys = _evaluated_keys(validator, instance, schema["if"])
        if "then" in schema:
            keys |= _evaluated_keys(validator, instance, schema["then"])
        return keys
    if "else" in schema:
        return _evaluated_keys(validator, instance, schema["else"])
    return set()


def _valid(errors: Iterator[Any]) -> bool:
    return next(errors, None) is None


# multipleOf in exact arithmetic ----------------------------------------------------------------
def _exact(number: int | float) -> Fraction:
    """A JSON number as written: 0.1 is 1/10 (its shortest repr), not the float's binary value."""
    return Fraction(number) if isinstance(number, int) else Fraction(repr(number))


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: Any) -> Iterator[Any]:
    # jsonschema divides in floats: a 400-digit integer by 0.1 raised OverflowError (a 500),
    # and 0.3 was no multiple of 0.1.
    if not validator.is_type(instance, "number") or not validator.is_type(divisor, "number"):
        return
    if divisor > 0 and _exact(instance) % _exact(divisor) != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


# uniqueItems in linear time -------------------------------------------------------------------
def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    # jsonschema compares every pair of items it cannot sort (objects, mixed types): one
    # evaluation of the budget, yet 4,000 objects took half a minute and 20,000 some minutes.
    # Each item's hashable key, with JSON's equality (1 == 1.0, true != 1, keys unordered),
    # finds a repeat in one pass.
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _equality_key(item)
        if key in seen:
            yield ValidationError(f"{_short(instance)} has non-unique elements")
            return
        seen.add(key)


def _equality_key(value: Any) -> Any:
    """A hashable value equal to another's exactly when JSON Schema calls the two equal (the
    value is at most ``MAX_DEPTH`` deep: ``instance_problem`` is checked first)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("object", frozenset((key, _equality_key(v)) for key, v in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(_equality_key(v) for v in value))
    if isinstance(value, int | float):
        return ("number", value)
    return (type(value).__name__, value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


# The validator class -------------------------------------------------------------------------
def _counted(name: str, keyword: Any) -> Any:
    def evaluate(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        remaining = _budget.get(None)
        if remaining is not None:
            remaining[0] -= _cost(name, value, instance, schema)
            if remaining[0] < 0:
                raise _OverBudget
        return keyword(validator, value, instance, schema)

    return evaluate


def _cost(name: str, value: Any, instance: Any, schema: Any) -> int:
    """Steps of one keyword evaluation. ``enum``, ``properties``, ``required``... go through
    their whole value each time: counted as one, an ``enum`` of 100,000 numbers (a 700 kB
    request) on the items of an array held a worker for minutes, every item scanning them all.
    The regex keywords match every key of the object with every pattern (RE2, ~20 us each):
    1,000 patterns on 1,000 keys took 17 s."""
    steps = 1 + len(value) // MEMBERS_PER_STEP if isinstance(value, list | dict) else 1
    if name in _KEY_MATCHING and isinstance(instance, dict) and isinstance(schema, dict):
        patterns = schema.get("patternProperties")
        steps += len(instance) * len(patterns) if isinstance(patterns, dict) else 0
    return steps


#: Keywords that match each key of the object against each of ``patternProperties``.
_KEY_MATCHING = frozenset({"patternProperties", "additionalProperties", "unevaluatedProperties"})


_KEYWORDS = {
    **Draft202012Validator.VALIDATORS,
    "multipleOf": _multiple_of,
    "uniqueItems": _unique_items,
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
}
SafeValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {name: _counted(name, fn) for name, fn in _KEYWORDS.items()}
)


#: (attribute, init argument) of the validator, as jsonschema's own ``evolve`` lists them.
_FIELDS = [(field.name, field.alias) for field in attrs.fields(SafeValidator) if field.init]


def _evolve_in_class(self: Any, **changes: Any) -> Any:
    # jsonschema's evolve picks the class named by a subschema's ``$schema`` (a stock class,
    # whose regexes run on ``re``); every subschema stays with this one instead.
    for name, alias in _FIELDS:
        changes.setdefault(alias, getattr(self, name))
    return SafeValidator(**changes)


SafeValidator.evolve = _evolve_in_class

#: Checks a schema's own regexes (``format: regex`` in the meta-schema) with RE2, no others.
_SCHEMA_FORMATS = FormatChecker(formats=())
_SCHEMA_FORMATS.checks("regex", raises=UnsafePattern)(
    lambda value: not isinstance(value, str) or compile_pattern(value) is not None
)
#: The string formats a value must satisfy (OpenAI's structured outputs' list): jsonschema's
#: checkers (RFC 3339 dates and times through ``rfc3339-validator``, hostnames through
#: ``fqdn``), and ISO 8601 durations, which jsonschema checks only with ``isoduration``.
VALUE_FORMATS = FormatChecker(formats=())
VALUE_FORMATS.checkers.update(
    (name, Draft202012Validator.FORMAT_CHECKER.checkers[name])  # 2020-12's, not draft 3's time
    for name in ("date-time", "time", "date", "email", "hostname", "ipv4", "ipv6", "uuid")
)
_DURATION = re.compile(
    r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?", re.ASCII
)
#: RFC 3339 allows a leap second (``23:59:60Z``); rfc3339-validator refuses it.
_LEAP_SECOND = re.compile(r"(\d\d:\d\d:)60(?=(\.\d+)?([Zz]|[+-]\d\d:\d\d)$)")


def _with_leap_seconds(name: str) -> None:
    check, raises = VALUE_FORMATS.checkers[name]
    VALUE_FORMATS.checkers[name] = (
        lambda value: check(
            _LEAP_SECOND.sub(r"\g<1>59", value) if isinstance(value, str) else value
        ),
        raises,
    )


_with_leap_seconds("date-time")
_with_leap_seconds("time")
VALUE_FORMATS.checks("duration")(
    lambda value: not isinstance(value, str) or _DURATION.fullmatch(value) is not None
)
#: The meta-schema check on this class too (``check_schema`` would use the stock one, whose
#: meta-schema patterns run on ``re`` against the user's strings).
_META_CHECK = SafeValidator(SafeValidator.META_SCHEMA, format_checker=_SCHEMA_FORMATS)


# Bounds on nesting ---------------------------------------------------------------------------
def expanded_size(value: Any, limit: int) -> int | None:
    """How many arrays and objects ``value`` holds, a part it shares (a YAML alias) counted as
    often as it appears; None past ``limit`` or when a part holds itself. Linear in the
    distinct parts, so a small file whose aliases expand a billion-fold is refused at once."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        children = list(node.values() if isinstance(node, dict) else node)
        if finished:
            in_progress.discard(key)
            size = 1 + sum(sizes.get(id(child), 0) for child in children)
            if size > limit:
                return None
            sizes[key] = size
        elif key in in_progress:
            return None  # a part inside itself (a recursive alias)
        elif key not in sizes:
            in_progress.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return sizes.get(id(value), 0)


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays/objects more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)
    return False


def instance_problem(value: Any) -> str | None:
    """Why a parsed JSON value cannot be validated here (too deep, not valid Unicode), or None.

    ``json.loads`` turns an escaped lone surrogate (``"\\ud800"``) into a string that no UTF-8
    encoder (RE2, the database, an answer) accepts.
    """
    problem = _value_problem(value)
    return None if problem is None else f"JSON {problem}"


def _value_problem(value: Any) -> str | None:
    if deeper_than(value, MAX_DEPTH):
        return f"is nested deeper than {MAX_DEPTH} levels"
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and not _valid_unicode(node):
            return "holds a string that is not valid Unicode (a lone surrogate escape)"
        elif isinstance(node, float) and not math.isfinite(node):
            return "holds NaN or an infinite number, which JSON has not"  # read leniently
    return None


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The schema ----------------------------------------------------------------------------------
def _refused(reason: str) -> InvalidParameter:
    return InvalidParameter(f"json_schema cannot be used: {reason}", parameter="json_schema")


#: Keywords whose values are data, not subschemas: a ``$ref`` key in them is a value.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def _ref_refused(ref: str) -> InvalidParameter:
    if ref.startswith("#"):
        return _refused(f"$ref {ref!r} points at nothing in the schema")
    return _refused(f"$ref {ref!r} is not inside the schema (references are never fetched)")


class SafeSchema:
    """A checked schema, ready to validate many values (build one with ``compiled``)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        problem = _value_problem(self.schema)
        if problem is not None:
            raise _refused(f"the schema {problem}")
        invalid = best_match(_META_CHECK.iter_errors(self.schema))
        if invalid is not None:
            where = invalid.json_path.removeprefix("$").lstrip(".") or "(root)"
            cause = f" ({invalid.cause})" if invalid.cause is not None else ""
            raise _refused(f"{where}: {invalid.message}{cause}")
        self._validator = SafeValidator(
            self.schema, registry=_NO_RETRIEVAL, format_checker=VALUE_FORMATS
        )
        unresolvable = self._unresolvable_ref()
        if unresolvable is not None:
            raise _ref_refused(unresolvable)
        # References that lead back to themselves without reading into the value
        # ({"$ref": "#/$defs/A"}, A -> B -> A) fail every value: found now, on one of each type.
        probes: tuple[Any, ...] = ({}, [], "", 0, None)
        for probe in probes:
            self.first_error(probe)

    def _unresolvable_ref(self) -> str | None:
        """A ``$ref`` that no validation can resolve, found now rather than by the first value
        that reaches it (after a model was paid to make that value). Only in a schema without
        ``$id``s: with them, where a relative reference points depends on its place."""
        refs: list[str] = []
        stack: list[Any] = [self.schema]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                if isinstance(node.get("$id"), str):
                    return None
                refs += [v for k in ("$ref", "$dynamicRef") if isinstance(v := node.get(k), str)]
                stack.extend(v for k, v in node.items() if k not in _DATA_KEYWORDS)
        for ref in refs:
            try:
                self._validator._resolver.lookup(ref)
            except Unresolvable:
                return ref
        return None

    def first_error(self, instance: Any) -> ValidationError | None:
        """The first way ``instance`` breaks the schema, or None when it satisfies it.

        ``InvalidParameter`` when the schema cannot be applied: an unresolvable ``$ref``, a
        pattern RE2 refuses, a reference cycle, more than ``MAX_EVALUATIONS`` steps.
        """
        problem = instance_problem(instance)
        if problem is not None:
            return ValidationError(problem)
        token = _budget.set([MAX_EVALUATIONS])
        try:
            error: ValidationError | None = next(self._validator.iter_errors(instance), None)
        except Unresolvable as exc:
            raise _ref_refused(str(getattr(exc, "ref", "?"))) from None
        except UnsafePattern as exc:
            raise _refused(str(exc)) from None
        except _OverBudget:
            raise _refused(f"validating needs more than {MAX_EVALUATIONS} steps") from None
        except RecursionError:
            raise _refused("it refers to itself without end") from None
        finally:
            _budget.reset(token)
        return error


def compiled(schema: Mapping[str, Any] | SafeSchema) -> SafeSchema:
    """``schema`` checked once and cached: a dataset report applies one schema to every row."""
    if isinstance(schema, SafeSchema):
        return schema
    if deeper_than(schema, MAX_DEPTH):
        raise _refused(f"the schema is nested deeper than {MAX_DEPTH} levels")
    try:
        canonical = json.dumps(schema, sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys of mixed types (YAML): build it uncached
        return SafeSchema(schema)
    return _compiled(canonical)


@lru_cache(maxsize=64)
def _compiled(canonical: str) -> SafeSchema:
    return SafeSchema(json.loads(canonical))
