"""Words and comparison keys across scripts: marks, invisible characters, case."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from textnlp.validation import text as T
from textnlp.validation.text import fold, normalise, tokens, words

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.mark.parametrize(
    "hidden",
    [
        "\u034f",  # combining grapheme joiner (Mn)
        "\ufe0f",  # variation selector 16 (Mn)
        "\ufe00",  # variation selector 1
        "\U000e0100",  # variation selector 17
        "\u3164",  # Hangul filler (Lo)
        "\u115f",  # Hangul choseong filler
        "\u200b",  # zero-width space (Cf), as before
    ],
)
def test_invisible_characters_make_no_different_text(hidden: str) -> None:
    evasive = SENTENCE.replace("o", "o" + hidden)
    assert fold(evasive) == SENTENCE
    assert normalise(evasive) == normalise(SENTENCE)
    assert words(fold(evasive)) == words(SENTENCE)


def test_a_braille_blank_is_a_space_in_the_key() -> None:
    assert normalise(SENTENCE.replace(" ", "\u2800")) == normalise(SENTENCE)
    assert normalise(SENTENCE.replace(" ", " \u2800")) == normalise(SENTENCE)


def test_the_table_holds_unicodes_default_ignorable_code_points() -> None:
    """Cross-checked against the ``regex`` module's property, where it is installed."""
    regex = pytest.importorskip("regex")
    prop = regex.compile(r"\p{Default_Ignorable_Code_Point}")
    table = T.invisible_characters()
    missing = [
        hex(c)
        for c in range(sys.maxunicode + 1)
        if prop.match(chr(c)) and unicodedata.category(chr(c)) != "Cn" and c not in table
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("भारत की राजधानी", ["भारत", "की", "राजधानी"]),  # Devanagari vowel signs (Mc)
        ("தமிழ் நாடு", ["தமிழ்", "நாடு"]),  # Tamil vowel signs and virama
        ("שָׁלוֹם עוֹלָם", ["שָׁלוֹם", "עוֹלָם"]),  # Hebrew points
        ("مَرْحَبًا بِكُمْ", ["مَرْحَبًا", "بِكُمْ"]),  # Arabic harakat
        ("می\u200cخواهم بروم", ["می\u200cخواهم", "بروم"]),  # Persian ZWNJ inside a word
        ("Hello, world! 日本語", ["hello", "world", "日", "本", "語"]),
    ],
)
def test_combining_marks_stay_in_their_word(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_nfd_text_has_the_words_of_nfc_text() -> None:
    text = "Café crème brûlée, naïve façade"
    nfd = unicodedata.normalize("NFD", text)
    assert words(nfd) == words(text) == ["café", "crème", "brûlée", "naïve", "façade"]
    assert tokens(nfd) == tokens(text)


def test_turkish_capitals_fold_to_the_same_key() -> None:
    upper = "İSTANBUL'DA İKİ GÜZEL İNSAN İLE BULUŞTUK."
    assert words(upper) == ["istanbul", "da", "iki", "güzel", "insan", "ile", "buluştuk"]
    assert normalise(upper) == normalise("istanbul'da iki güzel insan ile buluştuk.")
    assert normalise("KIYILARINDA") == normalise("kıyılarında")


def test_thai_is_counted_by_letter_like_cjk() -> None:
    """Thai writes no spaces between words: each letter, with its vowel signs and tone
    marks, is a word, as each CJK character is."""
    assert words("ภาษาไทย ง่าย") == ["ภ", "า", "ษ", "า", "ไ", "ท", "ย", "ง่", "า", "ย"]
    assert words("ກິນເຂົ້າ") == ["ກິ", "ນ", "ເ", "ຂົ້", "າ"]  # Lao
    assert words("๒๕๖๗") == ["๒๕๖๗"]  # a number stays one
