"""The detectors' folded view (``pii_fold.Folded``, ``str.translate`` with a table filled as
characters are met) is the plain per-character fold (``definitions.py``): the same
text, and every folded span mapped back to the same original span. And the taken spans'
bookkeeping (``pii._Taken``) that the detectors share."""

from __future__ import annotations

import pytest

from tests.unit.validation.definitions import FoldedDefinition
from tests.unit.validation.mixed_texts import mixed_texts, random_code_point_strings
from textnlp.validation import find_pii, pii
from textnlp.validation.pii import _Taken
from textnlp.validation.pii_fold import Folded

_HAND_PICKED = [
    "\ufb01\u00bd\u200b\u0660\u0665\u0660 \u06f0\u06f9\u06f1\u3000\uff11\uff12\uff13ab\u00ad",
    "x\u2800y",
    "\u00e9",
    "\ufdfa",  # one character, eighteen when folded
    "\u200b\u200c\u200d",  # nothing left
    "caf\u00e9 \u0928\u092e\u0938\u094d\u0924\u0947",  # one character each: no map
]


def _assert_same(text: str) -> None:
    fast, spec = Folded(text), FoldedDefinition(text)
    assert fast.text == spec.text, ascii(text)
    n = len(spec.text)
    for start in range(n):
        for end in {start + 1, n}:
            assert fast.span(start, end) == spec.span(start, end), (ascii(text), start, end)


def test_the_folded_text_and_its_spans_are_the_definitions() -> None:
    for text in _HAND_PICKED + mixed_texts(500, seed=11):
        _assert_same(text)


def test_random_code_points_fold_as_the_definition_says() -> None:
    for text in random_code_point_strings(20_003, seed=2):
        _assert_same(text)


def test_text_whose_characters_each_fold_to_one_needs_no_index_map() -> None:
    for text in ["caf\u00e9 \u0928\u092e\u0938\u094d\u0924\u0947", "\u0661\u0662\u0663 \u00a0x"]:
        folded = Folded(text)
        assert folded._origin is None
        assert folded.span(1, 3) == (1, 3) == FoldedDefinition(text).span(1, 3)


def test_findings_are_those_found_in_the_definitions_fold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = _HAND_PICKED + mixed_texts(400, seed=5)
    found = [find_pii(text) for text in texts]
    assert sum(map(len, found)) > 100  # the texts hold findings, in folded pieces too
    monkeypatch.setattr(pii, "Folded", FoldedDefinition)
    assert [find_pii(text) for text in texts] == found


def test_a_detector_that_found_nothing_leaves_the_spans_as_they_were() -> None:
    taken = _Taken()
    taken.add(1, 3)
    taken.add(5, 8)
    taken.settle()
    starts, ends = taken.starts, taken.ends
    taken.settle()  # nothing new: no copy of the lists
    assert taken.starts is starts and taken.ends is ends
    assert (starts, ends) == ([1, 5], [3, 8])
    taken.add(3, 4)
    taken.settle()
    assert (taken.starts, taken.ends) == ([1, 3, 5], [3, 4, 8])
    assert taken.overlaps(2, 3) and not taken.overlaps(4, 5)
