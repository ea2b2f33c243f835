"""The word and token patterns, and ``ngrams``, against their plain definitions
(``definitions.py``): one class of every combining mark (the pattern before its marks beyond
the BMP were set apart, which made it about 1.5 times as fast on CJK and Thai), and n-grams by
slicing."""

from __future__ import annotations

import random
import re
import sys
import unicodedata

from tests.unit.validation import definitions
from tests.unit.validation.mixed_texts import mixed_texts, random_code_point_strings
from textnlp.validation import text as T
from textnlp.validation.text import ngrams, tokens, words

_HAND_PICKED = [
    unicodedata.normalize("NFD", "café crème brûlée naïve"),
    "भारत की राजधानी",
    "தமிழ் நாடு",
    "שָׁלוֹם עוֹלָם",
    "İSTANBUL ıspanak Iı",
    "می\u200cخواهم a\u200db \u200dx\u200c",
    "x\U0001d167\U0001d168y \U0001d165\U0001d166",  # musical combining marks (plane 1)
    "a\U000e0100b \U000e01ef",  # variation selectors supplement (plane 14)
    "\U00011000\U00011001\U00011038 \U0001e130x",  # Brahmi, Nyiakeng Puachue Hmong marks
    "\U00020000\U0001d165 \U00020000\u0301 中\U000e0100",  # a plane-2 ideograph with marks
    "ก\u0e31\u0e49า ກິນ ๒๕๖๗",
    "12\u0301 \u0301 .\u0301",
    "👨\u200d👩\u200d👧 👍🏽",
]


def _mark_heavy(count: int, seed: int) -> list[str]:
    """Strings of marks of every plane among letters, digits, CJK, Thai, joiners."""
    marks = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c))[0] == "M"]
    rng = random.Random(seed)
    pool = marks + list("ab Z9.,中ก\u200c\u200d") + ["\U00020000", "\U0001d400", "ı", "İ"]
    pool += [chr(rng.randrange(0x10000, 0x30000)) for _ in range(300)]
    return random_code_point_strings(count, seed, pool=pool)


def _assert_same(text: str) -> None:
    assert words(text) == definitions.words(text), ascii(text)
    assert words(text, lower=False) == definitions.words(text, lower=False), ascii(text)
    assert tokens(text) == definitions.tokens(text), ascii(text)


def test_words_and_tokens_of_hand_picked_texts_are_the_definitions() -> None:
    for text in _HAND_PICKED:
        _assert_same(text)
    assert words(_HAND_PICKED[6]) == ["x\U0001d167\U0001d168y"]  # a plane-1 mark stays in


def test_words_and_tokens_of_seeded_texts_are_the_definitions() -> None:
    for text in mixed_texts(400, seed=9) + _mark_heavy(6000, seed=1):
        _assert_same(text)
    for text in random_code_point_strings(3000, seed=4):
        _assert_same(text)


def test_marks_beyond_the_bmp_are_tried_only_before_a_character_beyond_it() -> None:
    _, bmp, astral = T._categories()
    codes = [int(code, 16) for code in re.findall(r"\\U([0-9a-f]{8})", bmp)]
    assert codes and max(codes) <= 0xFFFF
    codes = [int(code, 16) for code in re.findall(r"\\U([0-9a-f]{8})", astral)]
    assert codes and min(codes) > 0xFFFF
    for pattern in T._patterns():
        # Each mark run (two in a word) tries the astral class only behind its guard.
        guarded = rf"(?=[^\x00-\uffff])[{astral}]"
        assert pattern.pattern.count(astral) == pattern.pattern.count(guarded) == 2


def test_ngrams_are_the_slices_of_n_items() -> None:
    rng = random.Random(6)
    lists = [[], ["a"], ["a", "b"], ["a", "b", "c"], *(words(t) for t in mixed_texts(200, 6))]
    lists += [rng.choices("abc", k=rng.randint(0, 30)) for _ in range(500)]
    for items in lists:
        for n in (1, 2, 3, 4, 5):
            assert ngrams(items, n) == definitions.ngrams(items, n), (items, n)
    assert ngrams(("x", "y", "z"), 2) == [("x", "y"), ("y", "z")]  # any sequence
