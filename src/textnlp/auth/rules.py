"""What a password, an API key's name and a username may be: one rule each for the service that
stores them and the request models that take them (standard library only, so the client's
request models can import it)."""

from __future__ import annotations

import re

from textnlp.errors import InvalidInput

MIN_PASSWORD = 8
#: The login forms' bound too (``LoginRequest``, the console's): a longer password could be set
#: but never typed in.
MAX_PASSWORD = 1024

#: A key's name is printable text: no control characters, and none of the bidirectional
#: overrides that make a listed name read as another. A regular expression in the syntax both
#: Python and JSON Schema (the OpenAPI document) read.
#: The longest name a key may have: the ``api_keys.name`` column's width, the API's request
#: model and the console's form (and its ``maxlength``) all read this one number.
MAX_KEY_NAME = 64
KEY_NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
_KEY_NAME = re.compile(KEY_NAME_PATTERN)


#: Letters and digits a reader takes for one another in most fonts (``aIice`` for ``alice``,
#: ``0`` for ``o``, ``rn`` for ``m``): a username is refused beside another with its skeleton.
_LOOK_ALIKES = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("1", "l"), ("i", "l"), ("0", "o"))


def username_skeleton(username: str) -> str:
    """What ``username`` looks like: two names with one skeleton pass for each other."""
    skeleton = username.lower()
    for look, like in _LOOK_ALIKES:
        skeleton = skeleton.replace(look, like)
    return skeleton


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    try:
        password.encode("utf-8")  # bytes a terminal sent in another encoding, as surrogates
    except UnicodeEncodeError:
        raise InvalidInput("a password is text: this one is not valid UTF-8") from None


def check_key_name(name: str) -> None:
    if len(name) > MAX_KEY_NAME:
        raise InvalidInput(f"a key's name has at most {MAX_KEY_NAME} characters")
    if not _KEY_NAME.fullmatch(name):  # match() lets "$" pass a final newline
        raise InvalidInput(
            "a key's name is printable text: no control or bidirectional-override characters"
        )
    if not name.strip():
        raise InvalidInput("a key's name is not blank: name it after where it is used")
