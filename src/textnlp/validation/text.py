"""Unicode-aware tokenisation and n-gram helpers shared by every metric.

Words are runs of letters/digits, each with the combining marks and zero-width joiners that
follow its letters (``भारत``, ``தமிழ்``, pointed Hebrew and NFD ``café`` are one word each).
Scripts that do not separate words with spaces are counted by character: each CJK ideograph or
kana, and each letter of Thai, Lao, Khmer and Myanmar (with its vowel signs and tone marks),
counts as one word; a dictionary segmenter would be a model of its own. Tokens are words plus
single punctuation marks. This is a deterministic, model-free definition so that figures are
comparable across models.

Comparison keys (``fold``, ``fold_case``, ``normalise``) are never shown: they drop what a reader
cannot see (Unicode's default-ignorable characters, ZWJ inside an emoji sequence included) and
fold case without a locale, so that Turkish ``İSTANBUL`` and ``istanbul`` compare equal.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache

#: Ideographs and kana: one word each.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
#: Thai, Lao, Myanmar (and its extensions), Khmer (and its symbols): written without spaces
#: between words, so, like CJK, one word per letter (with the marks that follow it). Their
#: digits are left out: a number stays one word.
_UNSPACED = (
    "\u0e00-\u0e4f\u0e5a-\u0ecf\u0eda-\u0eff"  # Thai, Lao
    "\u1000-\u103f\u104a-\u108f\u109a-\u109f\ua9e0-\ua9ef\ua9fa-\ua9ff\uaa60-\uaa7f"  # Myanmar
    "\u1780-\u17df\u17ea-\u17ff\u19e0-\u19ff"  # Khmer
)
_SINGLE = _CJK + _UNSPACED
#: Zero-width non-joiner and joiner: inside Persian and Indic words, not between words.
_JOINERS = "\u200c\u200d"

#: Unicode's Default_Ignorable_Code_Point, as ranges (DerivedCoreProperties.txt of the Unicode
#: Character Database, https://www.unicode.org/Public/UCD/latest/ucd/DerivedCoreProperties.txt;
#: Python's unicodedata lacks the property). Beside the format characters (Cf) it holds the
#: combining grapheme joiner, variation selectors and the Hangul fillers, which show nothing.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
#: Characters that show as a blank without being a space for Unicode (the braille blank, So).
_BLANKS = "\u2800"
#: Format characters and combining marks lie in planes 0, 1 and 14 (2 and 3 hold ideographs,
#: 15 and 16 private use): scanning only these takes a sixth of the time of all of Unicode.
_SCANNED_PLANES = (0, 1, 14)
_SPACE_RE = re.compile(r"\s+")


@cache
def _categories() -> tuple[frozenset[int], str, str]:
    """(format characters (Cf), combining marks (Mn, Mc, Me) of the BMP and those beyond it as
    regex class bodies), from one scan of the planes that hold them (a one-off, about 0.1 s)."""
    format_chars: set[int] = set()
    marks: list[int] = []
    for plane in _SCANNED_PLANES:
        for code in range(plane << 16, min((plane + 1) << 16, sys.maxunicode + 1)):
            category = unicodedata.category(chr(code))
            if category == "Cf":
                format_chars.add(code)
            elif category[0] == "M":
                marks.append(code)
    bmp = [code for code in marks if code <= 0xFFFF]
    return frozenset(format_chars), _class_body(bmp), _class_body(marks[len(bmp) :])


def _class_body(codes: list[int]) -> str:
    """Sorted code points as the ranges of a regex character class (``\\uXXXX-\\uYYYY...``)."""
    parts: list[str] = []
    start = prev = codes[0]
    for code in [*codes[1:], -1]:
        if code != prev + 1:
            parts.append(f"\\U{start:08x}-\\U{prev:08x}")
            start = code
        prev = code
    return "".join(parts)


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(words, tokens). A word starts with a letter or digit and goes on over letters, digits,
    marks and joiners; a letter of ``_SINGLE`` is a word by itself, with its marks. Speed: runs
    of one character class each (a group per character made the scan three times slower); the
    mark class is only tried before a non-ASCII character, and its ranges beyond the BMP (over
    a hundred, which ``re`` tries one by one) only before a character beyond the BMP: trying
    them after every CJK or Thai letter made ``words`` of such text about 1.5 times as slow."""
    _, bmp_marks, astral_marks = _categories()
    marks = rf"(?=[^\x00-\x7f])(?:[{bmp_marks}{_JOINERS}]|(?=[^\x00-\uffff])[{astral_marks}])+"
    word = rf"[^\W{_SINGLE}]+(?:{marks}[^\W{_SINGLE}]*)*|(?=\w)[{_SINGLE}](?:{marks})?"
    return re.compile(word), re.compile(rf"{word}|[^\w\s]")


def words(text: str, *, lower: bool = True) -> list[str]:
    """The word tokens of ``text``, NFC (case-folded by default, ``fold_case``)."""
    return _patterns()[0].findall(fold_case(text) if lower else _nfc(text))


def tokens(text: str) -> list[str]:
    """Words and punctuation marks of ``text``, case kept."""
    return _patterns()[1].findall(_nfc(text))


def ngrams(items: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The runs of ``n`` (>= 1) consecutive items, in order; none when fewer than ``n``. By
    ``zip`` of shifted copies: a slice and a tuple per n-gram took about 2.5 times as long."""
    return list(zip(*[items[k:] for k in range(n)], strict=False))  # the shortest ends it


def distinct_n(items: Sequence[str], n: int) -> float | None:
    """Unique n-grams / all n-grams; None when there is no n-gram."""
    grams = ngrams(items, n)
    if not grams:
        return None
    return len(set(grams)) / len(grams)


@cache
def invisible_characters() -> Mapping[int, str | None]:
    """What a reader cannot see, as a ``str.translate`` table: the default-ignorable and other
    format characters (zero-width spaces and joiners, the soft hyphen, direction marks, the
    combining grapheme joiner, variation selectors, Hangul fillers) map to None, blanks that are
    no space to a space. For comparison keys and detectors, never for text shown."""
    table: dict[int, str | None] = dict.fromkeys(_categories()[0])
    for first, last in _DEFAULT_IGNORABLE:
        table.update(dict.fromkeys(range(first, last + 1)))
    table.update(dict.fromkeys(map(ord, _BLANKS), " "))
    return table


def fold(text: str) -> str:
    """The text as a reader sees it: NFKC (full-width letters and digits as plain ones) without
    invisible characters (``invisible_characters``), so that invisible differences make no
    different text."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text.translate(invisible_characters()))


def fold_case(text: str) -> str:
    """Case-folded, NFC, with the Turkish dotted and dotless i as a plain i: casefold()
    writes ``İ`` as ``i`` + COMBINING DOT ABOVE (a word apart from ``i``) and keeps ``ı``,
    while the same text written in capitals has ``I``."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    return unicodedata.normalize("NFC", folded.replace("i\u0307", "i").replace("ı", "i"))


def _nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def normalise(text: str) -> str:
    """Folded, case-folded, whitespace collapsed: the key of exact-duplicate detection."""
    return _SPACE_RE.sub(" ", fold_case(fold(text))).strip()


def text_hash(text: str) -> str:
    """Hash of the normalised text (16 bytes of BLAKE2b, hex)."""
    return text_digest(text).hex()


def text_digest(text: str) -> bytes:
    """``text_hash`` as its 16 bytes."""
    return hashlib.blake2b(
        normalise(text).encode("utf-8", "surrogatepass"), digest_size=16
    ).digest()


def preview(text: str, limit: int = 200) -> str:
    flat = _SPACE_RE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
