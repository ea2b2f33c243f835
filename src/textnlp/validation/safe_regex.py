"""The one way a user's regex runs here: RE2, whose matching time is linear in the text.

Python's ``re`` backtracks, so a pattern like ``^(a+)+$`` takes seconds on 27 characters and
hours on 40, holding the GIL the whole time. RE2 never backtracks; what it cannot run in
linear time (backreferences, lookaround) it refuses to compile, and so do we: ``UnsafePattern``
names the reason. Compiled patterns are cached, since the same schema is applied to many texts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

#: RE2's memory budget for one compiled pattern; ``a{1000}{1000}`` and the like go over it.
MAX_PATTERN_MEMORY = 8 << 20
MAX_PATTERN_CHARS = 4096


class UnsafePattern(ValueError):
    """A pattern the linear-time engine cannot run (or too large a one)."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refusal is answered to the caller, not logged by RE2's C++
    options.max_mem = MAX_PATTERN_MEMORY
    return options


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program of ``pattern``, or ``UnsafePattern`` with RE2's reason."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsafePattern(f"pattern longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, options=_options())
    except UnicodeEncodeError:
        raise UnsafePattern("pattern is not valid Unicode (a lone surrogate)") from None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise UnsafePattern(
            f"the linear-time regex engine (RE2) cannot run {pattern!r}: {reason}"
        ) from None


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches anywhere in ``text`` (JSON Schema's ``pattern`` semantics)."""
    return compile_pattern(pattern).search(text) is not None
