"""Blob storage in S3 through boto3: multipart streaming uploads, presigned downloads.

Every call goes through ``_unavailable``: an S3 that cannot be reached (refused, timed out,
5xx, SlowDown, once botocore's retries are spent) is ``ServiceUnavailable(dependency=
"storage")``, which the API answers with 503 and the worker waits out.

The bucket's lifecycle rule moves generated files to Glacier after 90 days (design section 4).
Such an object cannot be read (``InvalidObjectState``) or downloaded through a presigned URL
until restored: reading it, or ``readable`` before a URL is handed out, starts a restore
(``RESTORE_DAYS``, the Standard tier: hours) and raises ``Archived`` saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from textnlp.adapters.aws_outage import aws_unavailable
from textnlp.adapters.storage.keys import check_key
from textnlp.errors import Archived, NotFound

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: Storage classes whose objects are read only after a restore.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
#: How long a restored copy stays readable.
RESTORE_DAYS = 7


def _code(exc: Exception) -> str:
    """The S3 error code of a botocore ``ClientError`` ("" for anything else)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _unavailable() -> AbstractContextManager[None]:
    return aws_unavailable("storage", "the storage (S3)")


class S3Storage:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def _missing(self, exc: Exception) -> bool:
        return _code(exc) in {"404", "NoSuchKey", "NotFound"}

    def _extra(self, content_type: str | None) -> dict[str, Any]:
        return {"ContentType": content_type} if content_type else {}

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        extra = self._extra(content_type)
        if metadata:
            extra["Metadata"] = metadata
        with _unavailable():
            self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data, **extra)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        with path.open("rb") as handle:
            self.put_stream(key, handle, content_type=content_type)

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        # upload_fileobj sends multipart uploads of 8 MiB parts: memory stays bounded.
        extra = self._extra(content_type)
        if metadata:
            extra["Metadata"] = metadata
        with _unavailable():
            self.client.upload_fileobj(stream, self.bucket, check_key(key), ExtraArgs=extra or None)

    def _get(self, key: str) -> Any:
        try:
            with _unavailable():
                return self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"no object {key!r} in s3://{self.bucket}") from None
        except Exception as exc:
            if _code(exc) == "InvalidObjectState":  # in Glacier, not restored
                raise self._archived(key) from None
            raise

    def readable(self, key: str) -> None:
        head = self._head(key)
        if head is None:
            raise NotFound(f"no object {key!r} in s3://{self.bucket}")
        restored = 'ongoing-request="false"' in str(head.get("Restore", ""))
        if head.get("StorageClass") in ARCHIVE_CLASSES and not restored:
            raise self._archived(key)

    def _archived(self, key: str) -> Archived:
        """Start the object's restore (a second request while one runs is S3's no-op); one
        that cannot start (no ``s3:RestoreObject``, S3 down) still says the file is archived."""
        try:
            with _unavailable():
                self.client.restore_object(
                    Bucket=self.bucket,
                    Key=check_key(key),
                    RestoreRequest={
                        "Days": RESTORE_DAYS,
                        "GlacierJobParameters": {"Tier": "Standard"},
                    },
                )
        except Exception as exc:
            if _code(exc) != "RestoreAlreadyInProgress":
                log.warning("cannot start the restore of %s: %s", key, _code(exc) or exc)
                return Archived(
                    "the file was archived (older than the bucket keeps at hand) and its "
                    "restore could not be started: ask an operator to restore it"
                )
        return Archived(
            "the file was archived (older than the bucket keeps at hand); its restore has "
            "begun: ask again in a few hours"
        )

    def get_bytes(self, key: str) -> bytes:
        body = self._get(key)["Body"]
        with _unavailable():
            return bytes(body.read())

    def open_read(self, key: str) -> Iterator[bytes]:
        body = self._get(key)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                with _unavailable():
                    yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return chunks()

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for chunk in self.open_read(key):
                handle.write(chunk)

    def _head(self, key: str) -> Any:
        """The object's head; None when it does not exist."""
        try:
            with _unavailable():
                return self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except Exception as exc:
            if self._missing(exc):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise NotFound(f"no object {key!r} in s3://{self.bucket}")
        return int(head["ContentLength"])

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with _unavailable():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def usage(self, prefix: str) -> int:
        total = 0
        paginator = self.client.get_paginator("list_objects_v2")
        with _unavailable():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                total += sum(int(item["Size"]) for item in page.get("Contents", []))
        return total

    def delete(self, key: str) -> None:
        with _unavailable():
            self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def presigned_url(self, key: str, expires_s: int = 3600) -> str | None:
        # Signed locally: no call to S3, nothing to be unavailable.
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": check_key(key)},
                ExpiresIn=expires_s,
            )
        )

    def close(self) -> None:
        """The boto3 client needs no closing."""
