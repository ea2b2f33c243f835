"""One run at a time per output file: an exclusive lock on ``<output>.lock`` beside it.

Two runs writing one output share its journal: the second truncates the first's progress and
removes the journal when it ends, and the first then writes an empty file. So a run holds
``flock`` on the lock file from before it reads the journal until the output is written, and
takes it without waiting: a second run is refused at once (``Conflict``, naming the holder's
pid), before it touches the output or the journal.

The lock is the kernel's, not the file's presence: a lock file left by a killed run is simply
taken over. The holder removes the file when it is done, as tidying only; since that may
happen between another run's ``open`` and its ``flock``, a run that got the lock checks that
the path still names the file it locked, and opens it again if not.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from textnlp.errors import Conflict, OutputError
from textnlp.generation.side_files import open_side_file


def lock_path(output: Path) -> Path:
    return output.with_name(f"{output.name}.lock")


class OutputLock:
    """``with OutputLock(output):`` the only run writing ``output`` (and its journal)."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = lock_path(output)
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        while self._fd is None:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise Conflict(
                    f"another run is writing {self.output}{holder}; wait for it to end, "
                    "or write to another file"
                ) from None
            except OSError as exc:  # a file system without locks
                os.close(fd)
                raise OutputError(f"cannot lock {self.path}: {exc.strerror}") from None
            if _still_named(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
            else:  # the holder ended and removed it meanwhile: lock the file there now
                os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        # Removed while still held: a run that opens the old file now finds it renamed away.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _open(self) -> int:
        # Never through a link planted at the lock's name: the pid would overwrite its target.
        return open_side_file(self.path, os.O_RDWR | os.O_CREAT)


def _holder(fd: int) -> str:
    """`` (pid N)`` of the run holding the lock, when it has written it yet."""
    pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f" (pid {pid})" if pid.isdigit() else ""


def _still_named(fd: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
