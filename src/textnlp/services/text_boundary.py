"""The one check that text entering the platform is text every part can hold.

JSON may escape a lone surrogate (``"\\ud800"``); Python decodes it into a ``str`` that no
UTF-8 encoder accepts, so it would fail far from where it came in: in a tokeniser, the cache
key, the database, the answer itself (a 500, a cut stream, a job failing three times). JSON
may also escape NUL (``"\\u0000"``), which PostgreSQL's text columns refuse (a user name, a
key's name, a job's prompts). Request models derive from ``TextBoundary``, which refuses such
text, strings and keys at any depth, with a 422 naming the field, before any other validation
runs. Light on purpose: the Python client builds these models too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

Location = tuple[str | int, ...]
#: A location as a linked list from the innermost key outwards.
_Link = tuple[str | int, "_Link"] | None


def valid_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with invalid code points escaped, safe to put in an answer or a log."""
    return text if valid_unicode(text) else text.encode("utf-8", "backslashreplace").decode()


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot enter the platform, or None."""
    if not valid_unicode(text):
        return "text is not valid Unicode (it holds a lone surrogate)"
    if "\x00" in text:
        return "text holds a NUL character (U+0000), which cannot be stored"
    return None


def invalid_text_at(data: Any) -> tuple[Location, str] | None:
    """Where a string (or a key) that cannot enter is in ``data``, and why; or None.

    Iterative, and each step links to its parent instead of copying a path, so a body nested
    a million deep costs linear time and no ``RecursionError``.
    """
    stack: list[tuple[Any, _Link]] = [(data, None)]
    while stack:
        node, link = stack.pop()
        if isinstance(node, str):
            if problem := text_problem(node):
                return _location(link), problem
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and (problem := text_problem(key)):
                    return _location((printable(key).replace("\x00", "\\x00"), link)), problem
                stack.append((value, (str(key), link)))
        elif isinstance(node, list | tuple):
            stack.extend((item, (i, link)) for i, item in enumerate(node))
    return None


def _location(link: _Link) -> Location:
    keys: list[str | int] = []
    while link is not None:
        key, link = link
        keys.append(key)
    return tuple(reversed(keys))


class TextBoundary(BaseModel):
    """Base of models that take text from outside: invalid Unicode anywhere is a 422, and so is
    a number that is not finite (JSON's ``NaN``, which Python's parser takes)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        found = invalid_text_at(data)
        if found is not None:
            where, problem = found
            error = PydanticCustomError("invalid_unicode", problem)
            raise ValidationError.from_exception_data(
                cls.__name__, [{"type": error, "loc": where, "input": "(invalid text)"}]
            )
        return data
