"""The files a run keeps beside its output (``<output>.lock``, ``<output>.partial.jsonl``),
opened so that one planted there cannot redirect the run's writes.

Their names are known in advance, so in a shared directory another user may have put a
symbolic link (to ``~/.bashrc``), a hard link, or a FIFO where the run will look. Writing
through it would truncate or fill the file it names; reading a FIFO would hang. So a side file
is opened without following a link (``O_NOFOLLOW``) and must then be a regular file with one
name: anything else is refused in one line, to be removed by hand.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from textnlp.errors import OutputError


def open_side_file(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open(path, flags)`` that refuses a link or anything but a plain file."""
    truncate = bool(flags & os.O_TRUNC)  # only once it is known to be ours: a hard link's
    flags &= ~os.O_TRUNC  # target was emptied before its refusal
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(_refusal(path, "a symbolic link")) from None
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    found = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(found.st_mode):
        problem = "not a regular file"
    elif found.st_nlink > 1:
        problem = "a hard link of another file"
    if problem is not None:
        os.close(fd)
        raise OutputError(_refusal(path, problem))
    os.set_blocking(fd, True)
    if truncate:
        os.ftruncate(fd, 0)
    return fd


def check_side_file(path: Path) -> None:
    """Refuse ``path`` when it is there and is not a plain file (before it is read)."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode):
        raise OutputError(_refusal(path, "a symbolic link"))
    if not stat.S_ISREG(found.st_mode):
        raise OutputError(_refusal(path, "not a regular file"))


def _refusal(path: Path, problem: str) -> str:
    return f"{path} is {problem}, not a file of textnlp's: remove it and run again"
