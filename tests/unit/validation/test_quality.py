"""Known answers of the per-text metrics."""

from __future__ import annotations

import random
import unicodedata

import pytest

from textnlp.validation import text_quality
from textnlp.validation.quality import check_json, repetition
from textnlp.validation.text import distinct_n, words


def test_distinct_2_hand_computed() -> None:
    # "the cat the cat the dog": bigrams the-cat, cat-the, the-cat, cat-the, the-dog
    # -> 3 unique of 5 = 0.6; unigrams: the, cat, dog of 6 = 0.5.
    q = text_quality("The cat the cat the dog", readability=False, language=False)
    assert q.distinct_2 == pytest.approx(3 / 5)
    assert q.distinct_1 == pytest.approx(3 / 6)
    assert q.distinct_3 == pytest.approx(3 / 4)  # the-cat-the, cat-the-cat, cat-the-dog unique


def test_lengths() -> None:
    q = text_quality("Hello, world! 日本語", readability=False, language=False)
    assert q.n_words == 5  # hello, world, 日, 本, 語
    assert q.n_tokens == 7  # + "," and "!"
    assert q.n_chars == 17
    assert (
        text_quality("a b c", count_tokens=lambda t: 42, readability=False, language=False).n_tokens
        == 42
    )


def _longest_by_brute_force(word_list: list[str]) -> int:
    longest = 0
    for length in range(1, len(word_list)):
        spans = [tuple(word_list[i : i + length]) for i in range(len(word_list) - length + 1)]
        if len(set(spans)) == len(spans):
            break
        longest = length
    return longest


def test_the_longest_repeated_span_matches_brute_force() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        alphabet = "abcd"[: rng.randint(1, 4)]
        word_list = [rng.choice(alphabet) for _ in range(rng.randint(0, 40))]
        assert repetition(word_list)[1] == _longest_by_brute_force(word_list), word_list


def test_a_long_text_written_twice_is_measured_in_memory_proportional_to_it() -> None:
    """10,000 distinct words twice: a tuple per span once took 39 s and 840 MB."""
    word_list = [f"w{i}" for i in range(10_000)] * 2
    assert repetition(word_list) == (1.0, 10_000)


def test_repetition_known_answer() -> None:
    ratio, longest = repetition(words("a b c a b c d"))
    # 3-gram "a b c" occurs twice -> covers words 0-2 and 3-5: 6 of 7.
    assert ratio == pytest.approx(6 / 7)
    assert longest == 3
    assert repetition(words("one two three four")) == (0.0, 0)


def test_empty_and_truncated() -> None:
    q = text_quality("   ", finish_reason="length", readability=False, language=False)
    assert q.empty and q.truncated is True
    assert q.distinct_2 is None
    assert (
        text_quality("ok", finish_reason="stop", readability=False, language=False).truncated
        is False
    )
    assert text_quality("ok", readability=False, language=False).truncated is None


def test_json_against_schema() -> None:
    schema = {
        "type": "object",
        "required": ["question", "answer"],
        "properties": {"answer": {"type": "string", "minLength": 1}},
    }
    assert check_json('Sure: {"question": "Why?", "answer": "Because"}', schema) == (True, None)
    ok, error = check_json('{"question": "Why?"}', schema)
    assert not ok and error is not None and "answer" in error
    assert check_json("no json here", None)[0] is False
    assert text_quality("plain", readability=False, language=False).json_valid is None


@pytest.mark.parametrize(
    ("text", "schema", "error"),
    [
        # jsonschema's multipleOf could not take the infinity Python's json made of 1e999: 500
        ('{"a": 1e999}', {"properties": {"a": {"multipleOf": 0.5}}}, "1e999 is too large"),
        ('{"a": Infinity}', {"properties": {"a": {"multipleOf": 0.5}}}, "Infinity is not a"),
        # NaN was valid JSON, and inside every minimum and maximum
        ('{"a": NaN}', {"properties": {"a": {"minimum": 0, "maximum": 1}}}, "NaN is not a"),
        ('{"a": [Infinity, -Infinity]}', None, "Infinity is not a JSON number"),
        ('The answer: {"a": -Infinity}.', None, "-Infinity is not a JSON number"),
    ],
)
def test_nan_and_infinities_are_not_json(
    text: str, schema: dict[str, object] | None, error: str
) -> None:
    ok, found = check_json(text, schema)
    assert ok is False and found is not None and error in found


def test_readability_and_language() -> None:
    q = text_quality("The cat sat on the mat. It was a sunny day and the cat was happy.")
    assert q.flesch_reading_ease is not None and q.flesch_reading_ease > 80  # very easy English
    assert q.language == "en"
    assert (
        text_quality("Der Hund läuft schnell über die große Wiese und bellt laut.").language == "de"
    )
    assert text_quality("12345 !!!").language is None


def test_distinct_none_without_ngrams() -> None:
    assert distinct_n(["one"], 2) is None


def test_words_with_combining_marks_are_counted_once() -> None:
    hindi = text_quality("भारत की राजधानी दिल्ली है", readability=False, language=False)
    assert hindi.n_words == 5 and hindi.distinct_1 == 1.0
    text = "Crème brûlée et café: naïve façade, café crème."
    nfd = unicodedata.normalize("NFD", text)
    nfc_q = text_quality(text, readability=False, language=False)
    nfd_q = text_quality(nfd, readability=False, language=False)
    assert nfd_q.n_words == nfc_q.n_words == 8
    assert nfd_q.distinct_1 == nfc_q.distinct_1 == pytest.approx(6 / 8)
    assert nfd_q.n_tokens == nfc_q.n_tokens
