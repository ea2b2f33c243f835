"""The plain definitions the validation's fast paths are checked against (and were, before
they were made fast): the per-character PII fold, the word pattern with one class of every
combining mark, n-grams by slicing, and a record measured through ``text_quality``.

``use_definitions`` puts them in place of the fast paths, for a whole report made both ways.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

import numpy as np
import pytest

from textnlp.validation import diversity, pii, quality
from textnlp.validation import text as text_module
from textnlp.validation.loader import DatasetRow
from textnlp.validation.measures import UNKNOWN, Measures
from textnlp.validation.text import invisible_characters


class FoldedDefinition:
    """Each character folded by itself, with the index it came from (the definition)."""

    def __init__(self, text: str) -> None:
        invisible = invisible_characters()
        parts: list[str] = []
        self.origin: list[int] = []
        for index, char in enumerate(text):
            if ord(char) in invisible:
                folded = invisible[ord(char)]
                if folded is None:
                    continue
            elif (digit := unicodedata.decimal(char, None)) is not None:
                folded = str(digit)
            elif unicodedata.category(char) == "Zs":
                folded = " "
            else:
                folded = unicodedata.normalize("NFKC", char)
            parts.append(folded)
            self.origin.extend([index] * len(folded))
        self.text = "".join(parts)

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.origin[start], self.origin[end - 1] + 1


@cache
def word_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(words, tokens) with one mark class: every code point of category M, all planes."""
    marks = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c))[0] == "M"]
    body = "".join(f"\\U{c:08x}" for c in marks)
    mark_run = rf"(?=[^\x00-\x7f])[{body}{text_module._JOINERS}]+"
    single = text_module._SINGLE
    word = rf"[^\W{single}]+(?:{mark_run}[^\W{single}]*)*|(?=\w)[{single}](?:{mark_run})?"
    return re.compile(word), re.compile(rf"{word}|[^\w\s]")


def words(text: str, *, lower: bool = True) -> list[str]:
    key = text_module.fold_case(text) if lower else unicodedata.normalize("NFC", text)
    return word_patterns()[0].findall(key)


def tokens(text: str) -> list[str]:
    return word_patterns()[1].findall(unicodedata.normalize("NFC", text))


def ngrams(items: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def measures_add(self: Measures, row: DatasetRow) -> None:
    """``Measures.add`` as it was: the figures taken from the whole ``text_quality``."""
    figures = quality.text_quality(
        row.text, finish_reason=row.finish_reason, readability=False, language=False
    )
    self.texts.append(row.text)
    self.n_words.append(figures.n_words)
    self.n_tokens.append(figures.n_tokens)
    self.n_chars.append(figures.n_chars)
    self.empty.append(figures.empty)
    self.truncated.append(UNKNOWN if figures.truncated is None else int(figures.truncated))
    self.pii.append(bool(figures.pii))
    self.replacement.append(figures.replacement_chars > 0)
    self.pii_kinds.update(finding.kind for finding in figures.pii)
    self.repeated_ngram_ratio.append(figures.repeated_ngram_ratio)
    self.distinct_2.append(np.nan if figures.distinct_2 is None else figures.distinct_2)
    self.labels.add(row.labels)
    if row.data:
        self.fields.add(row.data)
        self.has_data = True
    if len(self.made_by) < 2:
        self.made_by.add((row.template_id, row.template_version))


def use_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fast path replaced by its definition, wherever it is called from."""
    monkeypatch.setattr(pii, "Folded", FoldedDefinition)
    monkeypatch.setattr(text_module, "_patterns", word_patterns)
    for module in (text_module, quality, diversity):
        monkeypatch.setattr(module, "ngrams", ngrams)
    monkeypatch.setattr(Measures, "add", measures_add)
