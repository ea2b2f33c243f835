"""Filter columns: accept or reject a whole record, and say why.

A filter reads the columns it names and answers ``None`` (the record passes) or a short
reason a person can read in the record's ``error``. Checks are pure and never raise on odd
values: a missing column, a number where text was expected or a broken JSON string is a
rejection with its reason, since one strange record must not stop a run of thousands.

What a user writes is checked when the recipe loads (a bad regex, a schema that reaches
outside itself, an expression that does not parse): the run fails before a model is paid.
Users' regexes run on RE2 (``safe_regex``), users' schemas through ``safe_schema``.

``refusal``'s own patterns and the walk through nested values are in ``refusals``.

``near-duplicate`` is the one filter with state: the engine asks the ``DuplicateIndex`` of
``rule.index()``, in record order, about records every other filter accepted, and adds the
records it finally keeps.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

import jinja2
from jinja2 import meta
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from textnlp.errors import InvalidParameter
from textnlp.generation.jinja_sandbox import JINJA, check_templates
from textnlp.generation.recipes.refusals import builtin_match, strings
from textnlp.generation.recipes.samplers import Finite
from textnlp.validation.safe_regex import UnsafePattern, compile_pattern
from textnlp.validation.safe_schema import compiled
from textnlp.validation.text import fold, words

#: Characters of a value or pattern quoted in a reason.
SNIPPET_CHARS = 40


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stateful: ClassVar[bool] = False
    #: Modules the rule imports when it checks (an extra's): a run checks them before it starts.
    needs: ClassVar[tuple[str, ...]] = ()

    type: Literal["filter"] = "filter"
    description: str = ""

    def check(self, row: Mapping[str, Any]) -> str | None:
        """``None`` when the record passes, else why not."""
        raise NotImplementedError

    def verdict(self, row: Mapping[str, Any], finish: Mapping[str, str]) -> str | None:
        """What the builder asks: ``check`` on the row; ``finish`` is how each llm cell's
        last model call ended (``stop``, ``length``...), for the rules that read it."""
        return self.check(row)


class _ColumnRule(_Rule):
    column: str = Field(min_length=1)

    def references(self) -> set[str]:
        return {self.column}

    def _text(self, row: Mapping[str, Any]) -> str | _Reject:
        """The column's value as text, or why it cannot be read as text."""
        if self.column not in row or row[self.column] is None:
            return _Reject(f"column {self.column!r} is missing")
        value = row[self.column]
        if not isinstance(value, str):
            return _Reject(f"column {self.column!r} holds {_kind(value)}, not text")
        return value


class _Reject(str):
    """A reason, told apart from a text value of the same type."""


# expression ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _expression(expr: str) -> Callable[..., Any]:
    return JINJA.compile_expression(expr, undefined_to_none=False)


class ExpressionFilter(_Rule):
    """A Jinja2 expression over the record's columns; a truthy value passes."""

    rule: Literal["expression"]
    expr: str = Field(min_length=1)

    @field_validator("expr")
    @classmethod
    def _parses(cls, expr: str) -> str:
        if expr.strip().startswith("{{"):  # a template's or an expression column's spelling
            raise ValueError(
                'a filter\'s expr is a bare expression, without {{ }} (e.g. expr: "rating >= 4")'
            )
        try:
            _expression(expr)
            check_templates("{{ (" + expr + ") }}")  # an unknown filter under an ``if`` too
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"expression does not parse: {exc.message}") from None
        except ValueError as exc:
            raise ValueError(f"expression does not parse: {str(exc).partition(': ')[2]}") from None
        return expr

    def references(self) -> set[str]:
        names = meta.find_undeclared_variables(JINJA.parse("{{ (" + self.expr + ") }}"))
        return set(names) - set(JINJA.globals)  # range, dict...: Jinja's, not columns

    def check(self, row: Mapping[str, Any]) -> str | None:
        try:
            passed = bool(_expression(self.expr)(dict(row)))
        except Exception as exc:  # any error of the user's expression rejects this record
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return f"expression error: {_snippet(message)}"
        return None if passed else f"expression false: {_snippet(self.expr)}"


# regex ---------------------------------------------------------------------------------------
def _pattern_checked(pattern: str) -> str:
    try:
        compile_pattern(pattern)
    except UnsafePattern as exc:
        raise ValueError(str(exc)) from None
    return pattern


def _re2_search(pattern: str, text: str) -> Any:
    """RE2's match of ``pattern`` in ``text``; ``UnicodeEncodeError`` on a lone surrogate."""
    return compile_pattern(pattern).search(text)


class RegexFilter(_ColumnRule):
    """The column must (or must not) contain a match of an RE2 pattern (search semantics)."""

    rule: Literal["regex"]
    pattern: str = Field(min_length=1)
    must_match: bool = True

    _checked = field_validator("pattern")(_pattern_checked)

    def check(self, row: Mapping[str, Any]) -> str | None:
        text = self._text(row)
        if isinstance(text, _Reject):
            return str(text)
        try:
            match = _re2_search(self.pattern, text)
        except UnicodeEncodeError:
            return f"column {self.column!r} is not valid Unicode"
        shown = _snippet(self.pattern)
        if self.must_match and match is None:
            return f"{self.column} does not match /{shown}/"
        if not self.must_match and match is not None:
            return f"{self.column} matches /{shown}/ at {_snippet(match.group(0))!r}"
        return None


# json-schema ---------------------------------------------------------------------------------
def _outside_references(schema: Any) -> list[str]:
    """``$ref``s that point outside the schema (only the schema's own ``$id``s are inside).

    ``safe_schema`` refuses them only when a value reaches them; here they fail the load.
    """
    ids: set[str] = set()
    refs: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "$id" and isinstance(value, str):
                    ids.add(value.split("#", 1)[0])
                elif key in ("$ref", "$dynamicRef") and isinstance(value, str):
                    refs.append(value)
                else:
                    stack.append(value)
    return [ref for ref in refs if ref.split("#", 1)[0] not in ids | {""}]


class JsonSchemaFilter(_ColumnRule):
    """The column (an object, or a string holding JSON) must satisfy a JSON Schema."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: Literal["json-schema"]
    json_schema: dict[str, Any] = Field(alias="schema")

    @model_validator(mode="after")
    def _schema_is_safe(self) -> JsonSchemaFilter:
        try:
            compiled(self.json_schema)
        except InvalidParameter as exc:
            raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        outside = _outside_references(self.json_schema)
        if outside:
            raise ValueError(
                f"invalid JSON Schema: $ref {outside[0]!r} is not inside the schema "
                "(references are never fetched)"
            )
        return self

    def check(self, row: Mapping[str, Any]) -> str | None:
        if self.column not in row:
            return f"column {self.column!r} is missing"
        value = row[self.column]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError) as exc:
                return f"{self.column} is not valid JSON: {_snippet(str(exc))}"
        try:
            error = compiled(self.json_schema).first_error(value)
        except InvalidParameter as exc:  # over the evaluation budget, a cycle...
            return f"{self.column}: schema cannot be applied: {_snippet(exc.message)}"
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "value"
        return f"{self.column} breaks the schema at {where}: {_snippet(error.message)}"


# length --------------------------------------------------------------------------------------
class LengthFilter(_ColumnRule):
    """Bounds on the column's characters (ends stripped) and words, counted as validation counts
    them (``validation.text.words``): runs of letters and digits, and one word per character of
    scripts written without spaces (Chinese, Japanese, Thai...), so that a record in those
    languages is not one "word" long."""

    rule: Literal["length"]
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=0)
    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> LengthFilter:
        bounds = (self.min_chars, self.max_chars, self.min_words, self.max_words)
        if all(bound is None for bound in bounds):
            raise ValueError("give at least one of min_chars, max_chars, min_words, max_words")
        for unit, low, high in (
            ("chars", self.min_chars, self.max_chars),
            ("words", self.min_words, self.max_words),
        ):
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{unit} {low} > max_{unit} {high}")
        return self

    def check(self, row: Mapping[str, Any]) -> str | None:
        text = self._text(row)
        if isinstance(text, _Reject):
            return str(text)
        text = text.strip()
        for unit, count, low, high in (
            ("chars", len(text), self.min_chars, self.max_chars),
            ("words", len(words(text)), self.min_words, self.max_words),
        ):
            if low is not None and count < low:
                return f"{count} {unit} < min {low}"
            if high is not None and count > high:
                return f"{count} {unit} > max {high}"
        return None


# language ------------------------------------------------------------------------------------
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z]{2,4})?$")
#: langdetect reads at most this many characters; cutting first spares its regexes the rest.
_DETECT_CHARS = 10_000


class LanguageFilter(_ColumnRule):
    """The column's language (langdetect) must be one of ``languages``; short texts pass."""

    rule: Literal["language"]
    needs: ClassVar[tuple[str, ...]] = ("langdetect",)
    languages: list[str] = Field(min_length=1)
    #: Texts shorter than this pass untested: langdetect guesses wildly on a few words.
    min_chars: int = Field(default=20, ge=0)

    @field_validator("languages")
    @classmethod
    def _codes(cls, languages: list[str]) -> list[str]:
        codes = [code.strip().lower() for code in languages]
        bad = [code for code in codes if not _LANGUAGE_CODE.match(code)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an ISO 639-1 code like 'en'")
        return codes

    def check(self, row: Mapping[str, Any]) -> str | None:
        text = self._text(row)
        if isinstance(text, _Reject):
            return str(text)
        text = text.strip()
        if len(text) < self.min_chars:
            return None
        try:
            found = _detect_language(text[:_DETECT_CHARS])
        except UnicodeError:
            return f"column {self.column!r} is not valid Unicode"
        if found is None:
            return f"no language detected in {self.column}"
        if found in self.languages or found.split("-")[0] in self.languages:
            return None
        return f"language {found!r} not in {self.languages}"


def _detect_language(text: str) -> str | None:
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # langdetect samples; a fixed seed gives the same answer each run
    try:
        return str(detect(text))
    except LangDetectException:  # no letters: digits, symbols, emoji only
        return None


# refusal -------------------------------------------------------------------------------------
class RefusalFilter(_ColumnRule):
    """Rejects refusals, meta-text and unfilled placeholders, the plagues of small models.

    A text, every turn of a dialogue and every string field of an object are read.
    """

    rule: Literal["refusal"]
    refusals: bool = True
    meta_text: bool = True
    placeholders: bool = True
    #: More patterns (RE2, case-sensitive unless they say ``(?i)``) that reject a record.
    extra_patterns: list[str] = []

    @field_validator("extra_patterns")
    @classmethod
    def _safe(cls, patterns: list[str]) -> list[str]:
        return [_pattern_checked(pattern) for pattern in patterns]

    def check(self, row: Mapping[str, Any]) -> str | None:
        if self.column not in row or row[self.column] is None:
            return f"column {self.column!r} is missing"
        value = row[self.column]
        if not isinstance(value, str | dict | list | tuple):
            return f"column {self.column!r} holds {_kind(value)}, not text"
        kinds = [
            kind
            for kind, enabled in (
                ("refusal", self.refusals),
                ("meta-text", self.meta_text),
                ("placeholder", self.placeholders),
            )
            if enabled
        ]
        for where, text in strings(value):
            reason = self._check_text(text, kinds)
            if reason is not None:
                if not where:
                    return reason
                return f"{reason} in {self.column}{'' if where.startswith('[') else '.'}{where}"
        return None

    def _check_text(self, text: str, kinds: list[str]) -> str | None:
        for kind in kinds:
            match = builtin_match(kind, text)
            if match is not None:
                return f"matched {kind} pattern {_snippet(match.group(0))!r}"
        for pattern in self.extra_patterns:
            try:
                found = _re2_search(pattern, text)
            except UnicodeEncodeError:
                return "text is not valid Unicode"
            if found is not None:
                return f"matched extra pattern {_snippet(found.group(0))!r}"
        return None


# judge ---------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _shown(number: float) -> str:
    return str(int(number)) if number.is_integer() else f"{number:.2f}".rstrip("0")


class JudgeFilter(_ColumnRule):
    """An llm-judge column's scores must reach ``min``: each criterion, or their mean."""

    rule: Literal["judge"]
    min: Finite  # NaN would make every comparison false: a rule that never rejects
    criteria: list[str] | None = Field(default=None, min_length=1)
    mode: Literal["each", "mean"] = "each"

    def check(self, row: Mapping[str, Any]) -> str | None:
        if self.column not in row or row[self.column] is None:
            return f"column {self.column!r} is missing"
        scores = row[self.column]
        if not isinstance(scores, dict):
            return f"column {self.column!r} holds {_kind(scores)}, not judge scores"
        names = self.criteria if self.criteria is not None else [str(k) for k in scores]
        if not names:
            return f"no scores in {self.column}"
        values: list[float] = []
        for name in names:
            if name not in scores:
                return f"no score for {name!r} in {self.column}"
            entry = scores[name]
            number = _number(entry.get("score") if isinstance(entry, dict) else entry)
            if number is None:
                return f"score {name} is not a number"
            if self.mode == "each" and number < self.min:
                return f"score {name} {_shown(number)} < {_shown(self.min)}"
            values.append(number)
        mean = sum(values) / len(values)
        if self.mode == "mean" and mean < self.min:
            return f"mean score {_shown(mean)} < {_shown(self.min)}"
        return None


# finished ------------------------------------------------------------------------------------
class FinishedFilter(_ColumnRule):
    """An llm column's model call ended by itself (its end token or a stop sequence), not at
    ``max_tokens``: a text cut there can still end on a full stop, in mid-thought."""

    #: It reads how the column's call ended, not its value: the column must be an llm column.
    reads_finish: ClassVar[bool] = True

    rule: Literal["finished"]

    def verdict(self, row: Mapping[str, Any], finish: Mapping[str, str]) -> str | None:
        if finish.get(self.column) == "length":
            return f"{self.column} stopped at max_tokens"
        return None


# near-duplicate ------------------------------------------------------------------------------
NUM_PERM = 128
_WORD = re.compile(r"\w+")


def _char_shingles(text: str) -> set[str]:
    """Character 5-grams of the text's words: case, accents' encodings, invisible characters,
    punctuation and spacing do not make a text new."""
    normal = " ".join(_WORD.findall(fold(text).casefold()))
    if len(normal) < 5:
        return {normal}
    return {normal[i : i + 5] for i in range(len(normal) - 4)}


class NearDuplicateFilter(_ColumnRule):
    """Rejects a record whose column is close (MinHash Jaccard) to an accepted record's.

    Stateful: checked through ``index()``; ``check`` on the rule itself always passes.
    """

    stateful: ClassVar[bool] = True
    needs: ClassVar[tuple[str, ...]] = ("datasketch",)

    rule: Literal["near-duplicate"]
    #: Estimated Jaccard similarity of the shingle sets at or above which a record is a copy.
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    #: Word 3-shingles as ``textnlp validate`` makes them (``validation.minhash``: a CJK
    #: character is a word, so both agree on which texts are near-duplicates), or character
    #: 5-grams (short texts).
    shingles: Literal["words", "chars"] = "words"

    def check(self, row: Mapping[str, Any]) -> str | None:
        return None

    def index(self) -> DuplicateIndex:
        return DuplicateIndex(self)


class DuplicateIndex:
    """The accepted records of one run, as MinHash signatures in an LSH index."""

    def __init__(self, rule: NearDuplicateFilter) -> None:
        from datasketch import MinHash

        from textnlp.validation.dedup import new_lsh

        self.rule = rule
        self._template = MinHash(num_perm=NUM_PERM)  # permutations made once, copied per text
        self._lsh = new_lsh(rule.threshold, NUM_PERM)  # datasketch refuses thresholds near 1
        self._signatures: dict[int, Any] = {}
        self._last: tuple[str, Any] | None = None  # check's signature, reused by add

    def _signature(self, text: str) -> Any:
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        if self.rule.shingles == "words":
            signature = self._words_signature(text)
        else:
            signature = self._template.copy()
            signature.update_batch(s.encode("utf-8", "surrogatepass") for s in _char_shingles(text))
        self._last = (text, signature)
        return signature

    def _words_signature(self, text: str) -> Any:
        """validate's own signature of ``text`` (``validation.minhash``: its shingles,
        datasketch's permutations), as the LSH index takes it (as ``validation.leakage`` does).
        A text without words has the all-max signature: a copy of any other text without words."""
        from datasketch import LeanMinHash

        from textnlp.validation.minhash import DEFAULT_SEED, signatures

        values, _ = signatures([text], num_perm=NUM_PERM, seed=DEFAULT_SEED)
        return LeanMinHash(seed=DEFAULT_SEED, hashvalues=values[0], scheme="affine32")

    def check(self, row: Mapping[str, Any]) -> str | None:
        text = self.rule._text(row)
        if isinstance(text, _Reject):
            return str(text)
        signature = self._signature(text)
        best: tuple[float, int] | None = None
        for index in self._lsh.query(signature):
            similarity = float(signature.jaccard(self._signatures[index]))
            # LSH candidates are approximate: keep those whose estimate reaches the threshold.
            if similarity >= self.rule.threshold and (
                best is None or (similarity, -index) > (best[0], -best[1])
            ):
                best = (similarity, index)
        if best is None:
            return None
        return f"near-duplicate of record {best[1]} (Jaccard ~{best[0]:.2f})"

    def add(self, row: Mapping[str, Any], index: int) -> None:
        """Remembers an accepted record (call after ``check``, in record order)."""
        text = self.rule._text(row)
        if isinstance(text, _Reject) or index in self._signatures:
            return
        signature = self._signature(text)
        self._lsh.insert(index, signature)
        self._signatures[index] = signature

    def __len__(self) -> int:
        return len(self._signatures)


Filter = Annotated[
    ExpressionFilter
    | RegexFilter
    | JsonSchemaFilter
    | LengthFilter
    | LanguageFilter
    | RefusalFilter
    | JudgeFilter
    | FinishedFilter
    | NearDuplicateFilter,
    Field(discriminator="rule"),
]

FILTER_RULES: tuple[str, ...] = (
    "expression",
    "regex",
    "json-schema",
    "length",
    "language",
    "refusal",
    "judge",
    "finished",
    "near-duplicate",
)
