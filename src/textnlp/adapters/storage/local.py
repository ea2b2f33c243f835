"""Blob storage in a local directory (the ``local`` profile): keys are relative paths.

A write the file system refuses (full, read-only, a path through a file) is
``ServiceUnavailable(dependency="storage")``, as an S3 outage is: the storage's state, not a
request's or a job's fault, so a worker waits it out instead of spending the job's attempts.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from textnlp.adapters.storage.keys import check_key
from textnlp.errors import NotFound, ServiceUnavailable

CHUNK = 1 << 20
#: What a file system answers a write it cannot take (a source stream's own errors pass).
_REFUSED_WRITES = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
)


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no object {key!r} in storage")
        return path

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        # No object metadata on a file system; nothing locally reads it (the S3 trigger does).
        self._write(key, lambda handle: handle.write(data))

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        with path.open("rb") as source:
            self.put_stream(key, source)

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._write(key, lambda handle: shutil.copyfileobj(stream, handle, CHUNK))

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        """Atomic: a temporary file in the same directory, renamed into place."""
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in _REFUSED_WRITES:
                raise self._unwritable(exc) from exc
            raise

    def _unwritable(self, exc: OSError) -> ServiceUnavailable:
        reason = exc.strerror or type(exc).__name__
        return ServiceUnavailable(f"cannot write to storage ({reason})", dependency="storage")

    def get_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def open_read(self, key: str) -> Iterator[bytes]:
        path = self._existing(key)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return chunks()

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._existing(key), path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._existing(key).stat().st_size

    def list(self, prefix: str) -> list[str]:
        # Only the prefix's own directory is walked: a user's listing never costs the tree.
        folder = prefix.rpartition("/")[0]
        start = self.root / check_key(folder) if folder else self.root
        if not start.is_dir():
            return []
        keys = (
            p.relative_to(self.root).as_posix()
            for p in start.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def usage(self, prefix: str) -> int:
        return sum(self.size(key) for key in self.list(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, expires_s: int = 3600) -> str | None:
        return None  # the API streams local objects itself

    def readable(self, key: str) -> None:
        self.size(key)  # NotFound when missing; nothing is ever archived here

    def close(self) -> None:
        """Nothing to release."""
