"""No metric crashes on arbitrary Unicode (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textnlp.errors import InvalidParameter
from textnlp.services.text_boundary import valid_unicode
from textnlp.validation import (
    exact_duplicates,
    find_near_duplicates,
    find_pii,
    mask_pii,
    similarity,
    text_quality,
    validate_dataset,
)

TEXT = st.text(alphabet=st.characters(codec=None), max_size=200)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(TEXT)
def test_text_quality_never_crashes(text: str) -> None:
    if not valid_unicode(text):  # a lone surrogate: refused by name, not a tokenizer's error
        with pytest.raises(InvalidParameter, match="not valid Unicode"):
            text_quality(text)
        return
    q = text_quality(text, expect_json=True, finish_reason="stop")
    assert 0.0 <= q.repeated_ngram_ratio <= 1.0
    for value in (q.distinct_1, q.distinct_2, q.distinct_3):
        assert value is None or 0.0 < value <= 1.0
    masked = mask_pii(text, find_pii(text))
    assert isinstance(masked, str)


@SETTINGS
@given(st.lists(TEXT, min_size=1, max_size=6))
def test_dataset_metrics_never_crash(texts: list[str]) -> None:
    if not all(map(valid_unicode, texts)):
        with pytest.raises(InvalidParameter, match="not valid Unicode"):
            find_near_duplicates(texts)
        return
    find_near_duplicates(texts)
    exact_duplicates(texts)
    report = validate_dataset(texts, embeddings=False, reference=texts[:2])
    assert report.count == len(texts)


@SETTINGS
@given(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4))
def test_similarity_never_crashes(pairs: list[tuple[str, str]]) -> None:
    if not all(valid_unicode(c) and valid_unicode(r) for c, r in pairs):
        with pytest.raises(InvalidParameter, match="not valid Unicode"):
            similarity([c for c, _ in pairs], [r for _, r in pairs], embeddings=False)
        return
    report = similarity(
        [c for c, _ in pairs], [r for _, r in pairs], embeddings=False, bertscore=False
    )
    for pair in report.pairs:
        assert 0.0 <= pair.rouge1 <= 1.0 and 0.0 <= pair.bleu <= 100.0 + 1e-9
