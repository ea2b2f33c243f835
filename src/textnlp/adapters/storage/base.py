"""The blob storage interface."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


@runtime_checkable
class BlobStorage(Protocol):
    """Objects by key. Missing keys raise ``textnlp.errors.NotFound``."""

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``data``; ``metadata`` becomes the object's user metadata (S3 only)."""
        ...

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Upload a (large) local file, streamed in parts."""
        ...

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Upload from a readable binary stream without holding it in memory (``metadata``:
        as ``put_bytes``)."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def open_read(self, key: str) -> Iterator[bytes]:
        """The object in chunks (for streaming downloads)."""
        ...

    def download(self, key: str, path: Path) -> None: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def list(self, prefix: str) -> list[str]: ...

    def usage(self, prefix: str) -> int:
        """Bytes stored under ``prefix``."""
        ...

    def delete(self, key: str) -> None: ...

    def presigned_url(self, key: str, expires_s: int = 3600) -> str | None:
        """A time-limited download URL, or None where the API must serve the bytes itself."""
        ...

    def readable(self, key: str) -> None:
        """``Archived`` (its restore started) when the object must be restored before it can
        be read; ``NotFound`` when there is none. Before handing out a URL to it."""
        ...

    def close(self) -> None: ...
