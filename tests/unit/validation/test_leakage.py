"""Leakage by word 3-grams: a reference copied whole into a longer record (containment), and
the Jaccard of a compared pair counted exactly, not estimated from MinHash signatures."""

from __future__ import annotations

import random

import pytest

from textnlp.validation import Gate, find_leakage, render_html, validate_dataset
from textnlp.validation.leakage import MIN_CONTAINMENT_SHINGLES, ngram_matches
from textnlp.validation.minhash import signatures

WORDS = [f"word{i}" for i in range(2000)]


def _words(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(WORDS) for _ in range(count)]


def _grams(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def _jaccard(a: str, b: str) -> float:
    return len(_grams(a) & _grams(b)) / len(_grams(a) | _grams(b))


#: The audit's case: a 29-word reference inside a 76-word record (2.6x), Jaccard about 0.37.
REFERENCE = " ".join(_words(29, seed=1))
RECORD = " ".join(_words(24, seed=2) + REFERENCE.split() + _words(23, seed=3))
UNRELATED = " ".join(_words(60, seed=4))
OTHER_REFERENCE = " ".join(_words(40, seed=5))


def test_a_reference_copied_whole_into_a_longer_record_leaks() -> None:
    assert _jaccard(RECORD, REFERENCE) < 0.5  # what the Jaccard alone missed
    matches, _ = find_leakage(
        [UNRELATED, RECORD], [OTHER_REFERENCE, REFERENCE], embedding_threshold=None
    )
    assert [(m.index, m.reference_index, m.containment) for m in matches] == [(1, 1, 1.0)]
    assert matches[0].ngram_jaccard == _jaccard(RECORD, REFERENCE)


def test_the_report_counts_it_and_the_gate_fails() -> None:
    report = validate_dataset(
        [UNRELATED, RECORD],
        reference=[OTHER_REFERENCE, REFERENCE],
        embeddings=False,
        gate=Gate(max_leakage_rate=0.0),
    )
    assert report.leakage is not None
    assert report.leakage.rate == 0.5 and report.leakage.containment_threshold == 0.8
    assert report.metrics()["leakage_rate"] == 0.5 and not report.passed
    assert "containment" in render_html(report)
    # a stricter threshold than its containment lets it through
    looser = validate_dataset(
        [UNRELATED, RECORD],
        reference=[REFERENCE],
        embeddings=False,
        leakage_containment_threshold=1.0,
    )
    assert looser.leakage is not None and looser.leakage.leaked == 1
    off = validate_dataset(
        [UNRELATED, " ".join(RECORD.split()[:40] + RECORD.split()[41:])],  # one word dropped
        reference=[REFERENCE],
        embeddings=False,
        leakage_containment_threshold=1.0,
    )
    assert off.leakage is not None and off.leakage.leaked == 0


def test_a_reference_shorter_than_the_minimum_is_not_tested_for_containment() -> None:
    short = " ".join(REFERENCE.split()[: MIN_CONTAINMENT_SHINGLES + 1])  # 3-grams: minimum - 1
    just_long_enough = " ".join(REFERENCE.split()[: MIN_CONTAINMENT_SHINGLES + 2])
    matches, _ = find_leakage([RECORD], [short], embedding_threshold=None)
    assert matches == []
    matches, _ = find_leakage([RECORD], [just_long_enough], embedding_threshold=None)
    assert [(m.reference_index, m.containment) for m in matches] == [(0, 1.0)]
    phrase, _ = find_leakage(
        ["Thank you so much for the quick delivery, the kettle works well."],
        ["thank you so"],
        embedding_threshold=None,
    )
    assert phrase == []


def test_an_unrelated_record_does_not_leak() -> None:
    matches, _ = find_leakage([UNRELATED], [REFERENCE, OTHER_REFERENCE], embedding_threshold=None)
    assert matches == []


#: Ten words of forty changed: exact 3-gram Jaccard 25/51 = 0.49, MinHash estimate 0.54.
_BASE = _words(40, seed=1)
NEAR = " ".join(_BASE)
EDITED = " ".join(f"edit{k}" if k % 9 == 0 else w for k, w in enumerate(_BASE))


def test_the_jaccard_of_a_compared_pair_is_exact() -> None:
    sigs, _ = signatures([EDITED, NEAR])
    assert (sigs[0] == sigs[1]).mean() >= 0.5 > _jaccard(EDITED, NEAR)  # the estimate is off
    # below the threshold by count: not a leak, whatever the estimate says
    assert ngram_matches([EDITED], [NEAR], threshold=0.5) == {}
    matches, _ = find_leakage([EDITED], [NEAR], embedding_threshold=None)
    assert matches == []
    # a lower threshold: reported with its exact Jaccard
    assert ngram_matches([EDITED], [NEAR], threshold=0.45) == {0: (0, _jaccard(EDITED, NEAR))}


@pytest.mark.parametrize("threshold", [0.0, 1.5, float("nan")])
def test_find_leakage_refuses_a_containment_threshold_outside_0_1(threshold: float) -> None:
    from textnlp.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="leakage containment threshold"):
        find_leakage([RECORD], [REFERENCE], containment_threshold=threshold)


@pytest.mark.parametrize("batch", [None, 7])
def test_containment_is_that_of_every_pair_counted(
    batch: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a brute force over all pairs (small batches cut records and texts apart)."""
    from textnlp.validation import leakage, minhash

    if batch is not None:
        monkeypatch.setattr(leakage, "_BATCH", batch)
        monkeypatch.setattr(minhash, "_BATCH_SHINGLES", batch)
    rng = random.Random(7)
    vocabulary = WORDS[:30]  # few words: many shared 3-grams
    refs = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 25))) for _ in range(40)]
    texts = []
    for i in range(120):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(0, 40))]
        ref = refs[i % len(refs)].split()
        cut = rng.randint(0, len(ref))  # part of a reference, whole or not
        at = rng.randint(0, len(words))
        texts.append(" ".join(words[:at] + ref[: cut + len(ref) // 2] + words[at:]))
    matches, _ = find_leakage(texts, refs, embedding_threshold=None)
    by_index = {m.index: m for m in matches}
    for i, text in enumerate(texts):
        grams = _grams(text)
        best = max(
            (len(_grams(r) & grams) / len(_grams(r)) for r in refs if len(_grams(r)) >= 8),
            default=0.0,
        )
        if best >= 0.8:
            assert by_index[i].containment == best, i
        else:
            leaked = by_index.get(i)
            assert leaked is None or (leaked.ngram_jaccard or 0) >= 0.5, i


def test_a_thai_reference_copied_whole_leaks_without_embeddings() -> None:
    """Thai has no spaces between words: shingled by letter (like CJK), a copied sentence has
    enough 3-grams to be tested for containment (the audit's th_leak_*.jsonl)."""
    reference = "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทยและเป็นศูนย์กลางทางเศรษฐกิจของประเทศ"
    record = f"วันนี้ฉันอยากเล่าเรื่องหนึ่งให้ฟัง {reference} ขอบคุณที่อ่านจนจบนะครับ แล้วพบกันใหม่"
    other = "ฉันชอบกินข้าวผัดกับไข่ดาวตอนเช้าก่อนไปทำงานทุกวัน"
    matches, _ = find_leakage([record, other], [reference], embedding_threshold=None)
    assert [(m.index, m.reference_index, m.containment) for m in matches] == [(0, 0, 1.0)]


def test_a_copy_hidden_by_invisible_characters_leaks() -> None:
    """Combining grapheme joiners and variation selectors inside words (default-ignorable,
    not format characters) hide nothing."""
    reference = "The quick brown fox jumps over the lazy dog near the river bank today."
    for hidden in ("\u034f", "\ufe0f", "\u3164"):
        record = f"Here is my original text: {reference.replace('e', 'e' + hidden)} Thanks."
        matches, _ = find_leakage([record], [reference], embedding_threshold=None)
        assert [(m.index, m.containment) for m in matches] == [(0, 1.0)], hidden
