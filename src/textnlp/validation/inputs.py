"""The texts a caller hands the validation functions: strings of valid Unicode, and a list of
them where a list is asked for (a bare string is no list: it would be read character by
character). A wrong one is an ``InvalidParameter`` naming the argument, not an error from
deep inside a tokenizer or a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textnlp.errors import InvalidParameter
from textnlp.services.text_boundary import valid_unicode


def checked_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameter(
            f"{name} must be a string, not {type(value).__name__}", parameter=name
        )
    if not valid_unicode(value):  # a tokenizer's TypeError, far from here
        message = f"{name} is not valid Unicode (it holds a lone surrogate)"
        raise InvalidParameter(message, parameter=name)
    return value


def checked_texts(values: Any, name: str) -> Sequence[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidParameter(
            f"{name} must be a list of strings, not {type(values).__name__}", parameter=name
        )
    for index, value in enumerate(values):
        checked_text(value, f"{name}[{index}]")
    return values
