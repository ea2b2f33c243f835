"""Exact and near duplicates."""

from __future__ import annotations

import pytest

from textnlp.errors import InvalidParameter
from textnlp.validation import exact_duplicates, find_near_duplicates
from textnlp.validation.leakage import ngram_matches
from textnlp.validation.minhash import signatures

BASE = (
    "The new wireless earbuds arrived quickly and the sound quality is excellent for the price, "
    "although the case feels a little cheap and the battery could last longer on long flights."
)


def test_two_near_duplicates_found_two_different_not() -> None:
    texts = [
        BASE,
        BASE.replace("excellent", "superb"),  # one word changed: Jaccard of 3-grams ~0.85
        "My coffee grinder broke after two weeks; customer service never answered my e-mails.",
        "A gripping mystery novel with a clever detective and an ending nobody will guess.",
    ]
    result = find_near_duplicates(texts, threshold=0.7)
    assert result.groups == [[0, 1]]
    assert result.redundant == 1 and result.rate == pytest.approx(0.25)


def test_different_texts_are_not_duplicates() -> None:
    texts = ["the cat sat on the mat today", "a dog ran in the park last night"]
    assert find_near_duplicates(texts).groups == []
    assert exact_duplicates(texts).groups == []


def test_exact_duplicates_normalised() -> None:
    texts = ["Hello  World", "hello world", "hello world!", "", " "]
    assert exact_duplicates(texts).groups == [[0, 1], [3, 4]]


def test_near_duplicates_include_exact_copies_and_skip_empty() -> None:
    texts = [BASE, BASE.upper(), "", ""]
    assert find_near_duplicates(texts).groups == [[0, 1]]


def test_signature_agreement_estimates_jaccard() -> None:
    a = " ".join(f"w{i}" for i in range(100))
    b = " ".join(f"w{i}" for i in range(10, 110))  # 3-grams: 88 shared of 108 -> J = 0.815
    sigs, ok = signatures([a, b], num_perm=256)
    assert ok.all()
    assert (sigs[0] == sigs[1]).mean() == pytest.approx(88 / 108, abs=0.08)


def test_threshold_must_be_in_range() -> None:
    with pytest.raises(InvalidParameter):
        find_near_duplicates(["a"], threshold=0)


@pytest.mark.parametrize("threshold", [0.995, 1.0])
def test_a_threshold_near_1_finds_identical_word_sets(threshold: float) -> None:
    # datasketch picks a single band above ~0.99 and refuses to build it ("bands are too small")
    texts = [BASE, BASE.upper(), BASE.replace("excellent", "superb"), "an unrelated short text"]
    result = find_near_duplicates(texts, threshold=threshold)
    assert result.groups == [[0, 1]] and result.bands >= 2


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.01, float("nan")])
def test_a_threshold_outside_0_1_or_nan_is_refused(threshold: float) -> None:
    with pytest.raises(InvalidParameter, match=r"must be in \(0, 1\]"):
        find_near_duplicates(["a"], threshold=threshold)
    with pytest.raises(InvalidParameter, match=r"leakage n-gram threshold must be in \(0, 1\]"):
        ngram_matches(["a b c"], ["a b c"], threshold=threshold)


def test_leakage_at_threshold_1_finds_a_copied_reference() -> None:
    found = ngram_matches([BASE, "something else entirely here"], ["x y z", BASE], threshold=1.0)
    assert found == {0: (1, 1.0)}


def _hidden(text: str, index: int) -> str:
    """``text`` with a zero-width space inside its ``index``-th word."""
    parts = text.split(" ")
    word = parts[index % len(parts)]
    parts[index % len(parts)] = word[:1] + "\u200b" + word[1:]
    return " ".join(parts)


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_invisible_and_full_width_differences_make_no_new_text() -> None:
    """Zero-width spaces inside words and full-width letters: exact and near duplicates still,
    and a copied reference still leaks (MinHash reads the folded text, as the exact key does)."""
    copies = [_hidden(BASE, i) for i in range(5)]
    assert exact_duplicates([BASE, *copies]).groups == [[0, 1, 2, 3, 4, 5]]
    changed = _full_width(BASE.replace("excellent", "superb"))
    assert find_near_duplicates([BASE, changed], threshold=0.7).groups == [[0, 1]]
    assert ngram_matches([_full_width(BASE)], [BASE], threshold=0.9) == {0: (0, 1.0)}


def test_a_text_of_invisible_characters_is_empty() -> None:
    from textnlp.validation import text_quality

    assert text_quality("\u200b\u200b \ufeff").empty
    assert not text_quality("\u200bhi").empty


@pytest.mark.parametrize(
    "evasive",
    [
        BASE.replace("o", "o\u034f"),  # combining grapheme joiner inside words
        BASE.replace("e", "e\ufe0f"),  # variation selector 16
        BASE.replace(" ", " \u3164"),  # Hangul filler after each space
        BASE.replace(" ", "\u2800"),  # braille blanks for spaces
    ],
)
def test_invisible_characters_do_not_hide_a_duplicate(evasive: str) -> None:
    """Default-ignorable characters outside category Cf (combining grapheme joiner, variation
    selectors, Hangul filler) and the braille blank (the audit's evasion_*.jsonl)."""
    other = "A journey of a thousand miles begins with a single step, as the proverb says."
    texts = [BASE, other, evasive]
    assert exact_duplicates(texts).groups == [[0, 2]]
    assert find_near_duplicates(texts).groups == [[0, 2]]


def test_turkish_capitals_are_duplicates_of_the_lower_case_text() -> None:
    lower = "istanbul'da iki güzel insan ile buluştuk ve çay içtik."
    upper = "İSTANBUL'DA İKİ GÜZEL İNSAN İLE BULUŞTUK VE ÇAY İÇTİK."
    texts = [upper, lower, upper.lower()]  # lower(): "i" + COMBINING DOT ABOVE for each "İ"
    assert exact_duplicates(texts).groups == [[0, 1, 2]]
    assert find_near_duplicates(texts).groups == [[0, 1, 2]]
