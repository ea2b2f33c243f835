"""Text as the PII detectors read it: what hides data from a pattern undone, character by
character (``pii``'s docstring says what and why), with the way back to the original spans.

Each character is folded by itself, so a table made once serves every text: ``str.translate``
folds a text in one pass where a loop over its characters made up to three ``unicodedata``
calls for each.
"""

from __future__ import annotations

import unicodedata
from itertools import chain, repeat

from textnlp.validation.text import invisible_characters


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table: each character as the detectors read it, worked out (up to
    three ``unicodedata`` calls) the first time it is met. ``_LIMIT`` characters are kept, more
    than a language's alphabet: text of random code points costs time, not memory."""

    _LIMIT = 1 << 16

    def __missing__(self, code: int) -> str:
        char = chr(code)
        invisible = invisible_characters()
        if code in invisible:  # zero-width, format, other invisible: they hide nothing
            folded = invisible[code] or ""
        elif (digit := unicodedata.decimal(char, None)) is not None:
            folded = str(digit)  # ٠٥٠, ۰۹۱, ०९८: NFKC keeps these digits; patterns want 0-9
        elif unicodedata.category(char) == "Zs":
            folded = " "
        else:
            folded = unicodedata.normalize("NFKC", char)
        if len(self) < self._LIMIT:
            self[code] = folded
        return folded


class _LengthTable(dict[int, str]):
    """A ``str.translate`` table: each character as ``chr`` of the length of its fold (0 to
    18, U+FDFA's), kept as ``_FoldTable`` keeps the folds."""

    def __missing__(self, code: int) -> str:
        length = chr(len(_FOLDS[code]))
        if len(self) < _FoldTable._LIMIT:
            self[code] = length
        return length


_FOLDS = _FoldTable()
_LENGTHS = _LengthTable()


class Folded:
    """``text`` as the detectors read it, with each folded character's original index.

    Folded by ``str.translate`` (``_FOLDS``); where every character folds to one character
    (most text: accents, scripts, emoji) the indexes are the same and no map is made."""

    def __init__(self, text: str) -> None:
        self._origin: list[int] | None = None
        if text.isascii():  # nothing to fold: the common case, at no cost
            self.text = text
            return
        self.text = text.translate(_FOLDS)
        lengths = text.translate(_LENGTHS)
        if lengths.count("\x01") != len(lengths):  # a character dropped or made several
            counts = lengths.encode("latin-1")
            self._origin = list(chain.from_iterable(map(repeat, range(len(text)), counts)))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the folded ``[start, end)``."""
        if self._origin is None:
            return start, end
        return self._origin[start], self._origin[end - 1] + 1
