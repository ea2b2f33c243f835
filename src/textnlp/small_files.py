"""A small text file a user names (a template, a recipe, a release gate), read whole.

``Path.read_text`` reads whatever the path names: a FIFO blocks forever, ``/dev/zero`` grows
without end. ``read_small_text`` reads only a regular file (opened without blocking, so a FIFO
is refused, not waited on) and at most ``limit`` bytes of it, as seed files are bounded.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from textnlp.errors import TextNLPError

#: What a template, recipe or gate file may weigh: far above any real one.
MAX_SMALL_FILE_BYTES = 16 << 20


def read_small_text(
    path: Path,
    error: Callable[[str], TextNLPError],
    *,
    limit: int = MAX_SMALL_FILE_BYTES,
) -> str:
    """``path``'s UTF-8 text; ``error(reason)`` when it is not a regular file or is over
    ``limit`` bytes. ``OSError`` (missing, unreadable) and ``UnicodeDecodeError`` are left to
    the caller, who names the file its own way."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error("not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise error(f"larger than {limit >> 20} MiB")
    return raw.decode("utf-8")
