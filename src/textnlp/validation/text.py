"""Unicode-aware tokenisation and n-gram helpers shared by every metric.

Words are runs of letters/digits; each CJK ideograph or kana counts as one word, because those
scripts do not separate words with spaces. Tokens are words plus single punctuation marks. This
is a deterministic, model-free definition so that figures are comparable across models.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections.abc import Sequence
from functools import cache

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
TOKEN_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
_SPACE_RE = re.compile(r"\s+")


def words(text: str, *, lower: bool = True) -> list[str]:
    """The word tokens of ``text`` (lower-cased by default)."""
    return WORD_RE.findall(text.lower() if lower else text)


def tokens(text: str) -> list[str]:
    """Words and punctuation marks of ``text``, case kept."""
    return TOKEN_RE.findall(text)


def ngrams(items: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def distinct_n(items: Sequence[str], n: int) -> float | None:
    """Unique n-grams / all n-grams; None when there is no n-gram."""
    grams = ngrams(items, n)
    if not grams:
        return None
    return len(set(grams)) / len(grams)


@cache
def _format_characters() -> dict[int, None]:
    """Unicode's format characters (category Cf: zero-width spaces and joiners, the soft hyphen,
    direction marks), for ``str.translate`` to drop (a one-off scan, about 0.1 s)."""
    return {c: None for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}


def fold(text: str) -> str:
    """The text as a reader sees it: NFKC (full-width letters and digits as plain ones) without
    format characters, so that invisible differences make no different text."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text.translate(_format_characters()))


def normalise(text: str) -> str:
    """Folded, case-folded, whitespace collapsed: the key of exact-duplicate detection."""
    return _SPACE_RE.sub(" ", fold(text).casefold()).strip()


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
