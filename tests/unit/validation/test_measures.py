"""What ``Measures`` keeps of a record is what ``text_quality`` says of it, computed without the
figures the report drops (the longest repeated span, the masked copy, distinct 1- and 3-grams,
the pydantic model): those were half the cost of a record."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from tests.unit.validation.mixed_texts import mixed_texts
from textnlp.validation import quality
from textnlp.validation.loader import DatasetRow
from textnlp.validation.measures import UNKNOWN, Measures, measure
from textnlp.validation.quality import text_quality


def _rows() -> list[DatasetRow]:
    rng = random.Random(3)
    return [
        DatasetRow(text=text, finish_reason=rng.choice((None, "stop", "length")))
        for text in mixed_texts(600, seed=3)
    ]


def test_each_column_is_text_qualitys_figure() -> None:
    rows = _rows()
    measures = measure(rows)
    assert measures.texts == [row.text for row in rows]
    kinds: list[str] = []
    for i, row in enumerate(rows):
        spec = text_quality(
            row.text, finish_reason=row.finish_reason, readability=False, language=False
        )
        kinds += [finding.kind for finding in spec.pii]
        assert measures.n_words[i] == spec.n_words
        assert measures.n_tokens[i] == spec.n_tokens
        assert measures.n_chars[i] == spec.n_chars
        assert measures.empty[i] == spec.empty
        assert measures.truncated[i] == (UNKNOWN if spec.truncated is None else spec.truncated)
        assert measures.pii[i] == bool(spec.pii)
        assert measures.replacement[i] == (spec.replacement_chars > 0)
        assert measures.repeated_ngram_ratio[i] == spec.repeated_ngram_ratio
        if spec.distinct_2 is None:
            assert math.isnan(measures.distinct_2[i])
        else:
            assert measures.distinct_2[i] == spec.distinct_2
    # The report lists the kinds in order of first sight.
    assert measures.pii_kinds == Counter(kinds)
    assert list(measures.pii_kinds) == list(dict.fromkeys(kinds))
    # The sample holds every kind of record the columns tell apart.
    assert {measures.empty[i] for i in range(len(rows))} == {0, 1}
    assert {measures.pii[i] for i in range(len(rows))} == {0, 1}
    assert {measures.replacement[i] for i in range(len(rows))} == {0, 1}
    assert set(measures.truncated) == {UNKNOWN, 0, 1}


def test_a_record_is_measured_without_the_figures_the_report_drops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def dropped(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed a figure the report drops")

    for name in ("longest_repeated_span", "mask_pii", "TextQuality"):
        monkeypatch.setattr(quality, name, dropped)
    measures = Measures()
    measures.add(DatasetRow(text="Mail me at a@example.com: the cat the cat the cat."))
    assert measures.pii[0] == 1
    assert measures.repeated_ngram_ratio[0] == 0.5  # "the cat the cat the cat": 6 of 12 words
