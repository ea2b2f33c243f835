"""What a text reads as: an expression's rendering or a weighted key, as a template variable.

Only what is unambiguously a number or a truth value is converted: a JSON number (``4``,
``-2.5``, ``1e-05``) or ``true``/``false`` (``True``/``False`` as Jinja renders Python's).
YAML 1.1's wider readings are not: a zip code ``02134`` stays text (not octal 1116), ``12:30``
stays text (not base-60 750), ``NO`` stays text (not False), and so do ``0x1F``, ``1_000``,
``inf`` and ``nan``.
"""

from __future__ import annotations

import math
import re
from typing import Any

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_TRUTH = {"true": True, "True": True, "false": False, "False": False}


def natural(value: Any) -> Any:
    """'4' -> 4, '2.5' -> 2.5, 'true' -> True; any other value unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in _TRUTH:
        return _TRUTH[text]
    if _INTEGER.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # over Python's 4300 digits: a text of digits stays text
            return value
    if _NUMBER.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else value
    return value
