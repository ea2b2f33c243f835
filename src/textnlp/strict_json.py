"""JSON as RFC 8259 defines it, read from text a user or a model wrote.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity``, and turns a number too large
for a float (``1e999``) into infinity. None of them is JSON: written back they make a file
other JSON readers refuse, NaN passes every ``minimum``/``maximum`` of a schema, and infinity
breaks a schema's ``multipleOf``. ``DECODER`` refuses them with a ``ValueError`` that says why
(not a ``json.JSONDecodeError``, which means "not JSON here, look further"), as it refuses an
integer longer than Python converts (4300 digits: ``int`` raised a ``ValueError`` about its
own setting).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, NoReturn


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


def bounded_int(text: str) -> int:
    """``int``, refusing a number longer than Python converts in words of its own."""
    try:
        return int(text)
    except ValueError:  # Python's bound on digits (4300): a message naming its own setting
        raise ValueError(f"a number of {len(text.lstrip('-'))} digits is too long") from None


DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=bounded_int
)


def loads(text: str) -> Any:
    """``json.loads`` without NaN, infinities or overflowing numbers (``ValueError``)."""
    return DECODER.decode(text)


#: Where an object can begin: ``{``, JSON's whitespace, then a key's quote or the ``}`` of ``{}``.
_OBJECT_START = re.compile(r'\{[ \t\n\r]*["}]')


def object_starts(text: str) -> Iterator[int]:
    """The positions in ``text`` where a JSON object may begin, in order (the other ``{`` are
    not tried: a text of them cost a failed parse each)."""
    return (match.start() for match in _OBJECT_START.finditer(text))


#: The first piece of text ``decode_at`` reads (doubled while a value runs past its end).
_WINDOW = 4096
#: How near its piece's end an error may be caused by the cut (the longest token other than a
#: string, ``-Infinity``, cut short; a number cut short fails at the end itself).
_CUT_MARGIN = 16


def decode_at(text: str, start: int) -> tuple[Any, int]:
    """``DECODER.raw_decode(text, start)``, at a cost in what it reads rather than in ``start``.

    A ``json.JSONDecodeError`` counts the lines before its position, so trying every ``{`` of
    a text that holds no object cost the text's length squared (100 KB of ``{``: 5.8 s). The
    value is read from a piece of the text, doubled while the error may come from the cut;
    a value complete in its piece is the same value in the whole text. Raises the piece's
    ``JSONDecodeError`` (its position relative to ``start``) when there is no value there.
    """
    window = _WINDOW
    while True:
        piece = text[start : start + window]
        try:
            value, end = DECODER.raw_decode(piece)
        except json.JSONDecodeError as exc:
            whole = start + len(piece) >= len(text)
            cut = exc.pos >= len(piece) - _CUT_MARGIN or exc.msg.startswith("Unterminated string")
            if whole or not cut:
                raise
            window *= 2
            continue
        return value, start + end


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a model's answer (models like to wrap it in prose or code
    fences): what a generated record's data is, and what validation checks, so both agree.
    ``ValueError`` when there is none or it holds NaN, an infinity or too deep a nest."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        for start in object_starts(candidate):
            try:
                # NaN or 1e999 inside: a ValueError that says so (not JSON, and not retried
                # as another object, which would be the same one)
                value, _ = decode_at(candidate, start)
            except RecursionError:
                raise ValueError("the output's JSON is nested too deeply") from None
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("no JSON object in the output")
