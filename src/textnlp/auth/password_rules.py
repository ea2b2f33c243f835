"""What a password may be: one rule for creating users and for the login forms that take it
(standard library only, so the client's request models can import it)."""

from __future__ import annotations

from textnlp.errors import InvalidInput

MIN_PASSWORD = 8
#: The login forms' bound too (``LoginRequest``, the console's): a longer password could be set
#: but never typed in.
MAX_PASSWORD = 1024


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
