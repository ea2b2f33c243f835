"""JSON as RFC 8259 defines it, read from text a user or a model wrote.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity``, and turns a number too large
for a float (``1e999``) into infinity. None of them is JSON: written back they make a file
other JSON readers refuse, NaN passes every ``minimum``/``maximum`` of a schema, and infinity
breaks a schema's ``multipleOf``. ``DECODER`` refuses them with a ``ValueError`` that says why
(not a ``json.JSONDecodeError``, which means "not JSON here, look further").
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def loads(text: str) -> Any:
    """``json.loads`` without NaN, infinities or overflowing numbers (``ValueError``)."""
    return DECODER.decode(text)
