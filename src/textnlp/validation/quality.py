"""Per-text quality metrics (see ``README.md`` in this package for the table of ranges).

``text_quality`` is cheap except for ``readability`` (textstat) and ``language`` (langdetect,
a few milliseconds per text); both can be switched off for large datasets, where the dataset
report computes them on a sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from textnlp import strict_json
from textnlp.validation.inputs import checked_text
from textnlp.validation.pii import PIIFinding, find_pii, mask_pii
from textnlp.validation.safe_schema import SafeSchema, compiled, instance_problem
from textnlp.validation.text import distinct_n, fold, ngrams, tokens, words

REPETITION_N = 3
REPLACEMENT_CHARACTER = "\ufffd"


class TextQuality(BaseModel):
    """Quality metrics of one text. ``None`` means "not defined for this text" (e.g. no bigram)."""

    model_config = ConfigDict(extra="forbid")

    #: Characters (Unicode code points), >= 0.
    n_chars: int
    #: Word tokens (letter/digit runs with their marks; one per CJK or Thai character), >= 0.
    n_words: int
    #: Words plus punctuation marks, or the model's tokens when a counter is given, >= 0.
    n_tokens: int
    #: Unique n-grams / n-grams of lower-cased words, in [0, 1]; 1 = no repetition.
    distinct_1: float | None
    distinct_2: float | None
    distinct_3: float | None
    #: Share of words covered by a word 3-gram that occurs more than once, in [0, 1]; 0 = none.
    repeated_ngram_ratio: float
    #: Words in the longest word sequence that occurs at least twice, >= 0.
    longest_repeated_span: int
    #: Flesch reading ease (about 0-100, may leave it; higher = easier), English-centric.
    flesch_reading_ease: float | None = None
    #: Flesch-Kincaid US school grade (>= 0 in practice; higher = harder).
    flesch_kincaid_grade: float | None = None
    #: ISO 639-1 code from langdetect (e.g. "en"), None when undetectable.
    language: str | None = None
    #: True when the text is empty or only whitespace and invisible characters.
    empty: bool
    #: U+FFFD REPLACEMENT CHARACTERs, >= 0: where a decoder met bytes that were not UTF-8 (a
    #: model that emitted half a character, a file read with the wrong encoding).
    replacement_chars: int = 0
    #: True when generation stopped at max_tokens (finish_reason "length"); None if unknown.
    truncated: bool | None = None
    #: Whether the text holds a JSON object satisfying the schema; None when no JSON is expected.
    json_valid: bool | None = None
    json_error: str | None = None
    #: Personal data found, with character spans.
    pii: list[PIIFinding] = []
    #: The text with every PII finding replaced by [KIND]; equal to the text when none.
    masked_text: str | None = None


def text_quality(
    text: str,
    *,
    finish_reason: str | None = None,
    json_schema: Mapping[str, Any] | SafeSchema | None = None,
    expect_json: bool = False,
    readability: bool = True,
    language: bool = True,
    count_tokens: Callable[[str], int] | None = None,
) -> TextQuality:
    """Every per-text metric of ``text``.

    ``finish_reason`` is the generator's (``"length"`` means truncated); ``json_schema`` (or
    ``expect_json``) turns on the JSON check (``safe_schema``: a schema it cannot apply raises
    ``InvalidParameter``); ``count_tokens`` counts model tokens instead of the built-in
    tokeniser's.
    """
    base = figures(text, finish_reason=finish_reason, count_tokens=count_tokens)
    word_list = base.word_list
    quality = TextQuality(
        n_chars=base.n_chars,
        n_words=len(word_list),
        n_tokens=base.n_tokens,
        distinct_1=distinct_n(word_list, 1),
        distinct_2=base.distinct_2,
        distinct_3=distinct_n(word_list, 3),
        repeated_ngram_ratio=base.repeated_ngram_ratio,
        longest_repeated_span=longest_repeated_span(word_list),
        empty=base.empty,
        replacement_chars=base.replacement_chars,
        truncated=base.truncated,
        pii=base.pii,
        masked_text=mask_pii(text, base.pii) if base.pii else text,
    )
    if readability:
        quality.flesch_reading_ease, quality.flesch_kincaid_grade = readability_scores(text)
    if language:
        quality.language = detect_language(text)
    if json_schema is not None or expect_json:
        quality.json_valid, quality.json_error = check_json(text, json_schema)
    return quality


class Figures(NamedTuple):
    """The figures of ``text_quality`` that a dataset report keeps of every record
    (``measures.Measures``): ``text_quality`` adds the rest to these, so each is defined once."""

    word_list: list[str]  # ``words(text)``: n_words is its length
    n_chars: int
    n_tokens: int
    empty: bool
    replacement_chars: int
    truncated: bool | None
    pii: list[PIIFinding]
    repeated_ngram_ratio: float
    distinct_2: float | None


def figures(
    text: str,
    *,
    finish_reason: str | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Figures:
    """``text``'s ``Figures``: about half the time of ``text_quality`` without readability and
    language, which also finds the longest repeated span, masks the PII found, computes
    distinct 1- and 3-grams and builds a pydantic model (a million records pay for each)."""
    checked_text(text, "text")
    word_list = words(text)
    return Figures(
        word_list=word_list,
        n_chars=len(text),
        n_tokens=count_tokens(text) if count_tokens else len(tokens(text)),
        empty=not fold(text).strip(),
        replacement_chars=text.count(REPLACEMENT_CHARACTER),
        truncated=None if finish_reason is None else finish_reason == "length",
        pii=find_pii(text),
        repeated_ngram_ratio=repeated_ngram_ratio(word_list),
        distinct_2=distinct_n(word_list, 2),
    )


def repetition(word_list: list[str], n: int = REPETITION_N) -> tuple[float, int]:
    """(share of words inside a repeated n-gram, length of the longest repeated word span)."""
    return repeated_ngram_ratio(word_list, n), longest_repeated_span(word_list)


def repeated_ngram_ratio(word_list: list[str], n: int = REPETITION_N) -> float:
    """The share of words inside a word n-gram that occurs more than once (0 without words)."""
    grams = ngrams(word_list, n)
    counts: dict[tuple[str, ...], int] = {}
    for gram in grams:
        counts[gram] = counts.get(gram, 0) + 1
    covered = [False] * len(word_list)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(word_list) if word_list else 0.0


#: Two polynomial hashes of word spans (moduli under 2**31, so products fit in int64).
_HASHES = ((2_147_483_647, 1_000_003), (2_147_483_629, 911_382_323))


def longest_repeated_span(word_list: list[str]) -> int:
    """The length of the longest word span that occurs twice (overlaps allowed).

    Binary search on the length (if a span of length L repeats, so does one of L - 1), each
    length checked with rolling hashes of every span in numpy and equal spans confirmed word by
    word: O(n log n) time and O(n) memory (a tuple per span was quadratic in both).
    """
    import numpy as np

    ids: dict[str, int] = {}
    sequence = [ids.setdefault(word, len(ids) + 1) for word in word_list]
    if len(ids) == len(sequence):
        return 0  # no word twice: no span twice
    prefixes, powers = [], []
    for modulus, base in _HASHES:
        prefix, power = [0], [1]
        for value in sequence:
            prefix.append((prefix[-1] * base + value) % modulus)
            power.append(power[-1] * base % modulus)
        prefixes.append(np.asarray(prefix, dtype=np.int64))
        powers.append(power)

    def repeats(length: int) -> bool:
        keys = np.zeros(len(sequence) - length + 1, dtype=np.int64)
        for (modulus, _), prefix, power in zip(_HASHES, prefixes, powers, strict=True):
            span = (prefix[length:] - prefix[:-length] * power[length]) % modulus
            keys = (keys << 31) | span
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        for k in np.flatnonzero(ordered[1:] == ordered[:-1]):
            i, j = int(order[k]), int(order[k + 1])
            if sequence[i : i + length] == sequence[j : j + length]:
                return True
        return False

    low, high = 1, len(sequence) - 1  # a word occurs twice: a span of 1 repeats
    while low < high:
        mid = (low + high + 1) // 2
        if repeats(mid):
            low = mid
        else:
            high = mid - 1
    return low


def readability_scores(text: str) -> tuple[float | None, float | None]:
    """(Flesch reading ease, Flesch-Kincaid grade) from textstat; None for text without words."""
    if not words(text):
        return None, None
    import textstat

    try:
        ease = float(textstat.flesch_reading_ease(text))
        grade = float(textstat.flesch_kincaid_grade(text))
    except (ValueError, ZeroDivisionError, KeyError, IndexError):  # textstat on odd input
        return None, None
    return (ease if math.isfinite(ease) else None, grade if math.isfinite(grade) else None)


@lru_cache(maxsize=1)
def _language_detector() -> Callable[[str], str]:
    from langdetect import DetectorFactory, detect

    DetectorFactory.seed = 0  # langdetect is random by default; make it reproducible
    detector: Callable[[str], str] = detect
    return detector


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (langdetect, offline); None if undetectable."""
    if not re.search(r"[^\W\d_]", text):
        return None
    from langdetect.lang_detect_exception import LangDetectException

    try:
        return _language_detector()(text)
    except LangDetectException:
        return None


def check_json(text: str, schema: Mapping[str, Any] | SafeSchema | None) -> tuple[bool, str | None]:
    """(valid, error): the first JSON object in ``text`` against ``schema`` (any object if None),
    found as generation finds a record's (``strict_json.extract_json_object``): an output is
    judged as the run that made it judged it."""
    try:
        data = strict_json.extract_json_object(text)
    except ValueError as exc:
        return False, str(exc)
    problem = instance_problem(data)
    if problem is not None:
        return False, problem
    if schema is not None:
        error = compiled(schema).first_error(data)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return False, f"schema violation at {where}: {error.message}"
    return True, None
