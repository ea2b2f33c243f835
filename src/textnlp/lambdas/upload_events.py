"""The prompt uploads named by an S3 ``ObjectCreated`` event (``Records[].s3``).

The event is the S3 notification shape; the EventBridge rule in
``infra/textnlp_infra/constructs/orchestration.py`` rebuilds it from an "Object Created" event.
A malformed event raises ``ValueError`` naming what is missing, so it fails the invocation and
lands in the dead-letter queue with that reason; a well-formed record that is no prompt upload
(another prefix, a folder) is skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger(__name__)

#: ``textnlp.adapters.storage.Keys.USER_UPLOADS`` (that package needs more than this asset has).
UPLOADS_PREFIX = "prompts/user-uploads/"
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}|\+")


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    #: The object's ETag without quotes; empty when the event carries none.
    etag: str


def decode_key(key: str) -> str:
    """S3 notifications URL-encode keys; EventBridge's do not. Decode only what looks encoded."""
    return unquote_plus(key) if _ENCODED.search(key) else key


def _field(record: Any, number: int, *path: str) -> Any:
    value = record
    for depth, name in enumerate(path):
        if not isinstance(value, Mapping) or name not in value:
            missing = ".".join(path[: depth + 1])
            raise ValueError(f"record {number} has no {missing}")
        value = value[name]
    return value


def uploads_in(event: Mapping[str, Any]) -> list[Upload]:
    """The prompt uploads of ``event``, in order; ``ValueError`` when it is malformed."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("the event has no Records list")
    uploads: list[Upload] = []
    for number, record in enumerate(records):
        bucket = _field(record, number, "s3", "bucket", "name")
        raw_key = _field(record, number, "s3", "object", "key")
        if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
            raise ValueError(f"record {number} has an empty s3.bucket.name or s3.object.key")
        key = decode_key(raw_key)
        if not key.startswith(UPLOADS_PREFIX) or key.endswith("/"):
            log.info("record %d: %s is not a prompt upload: skipped", number, key)
            continue
        etag = record["s3"]["object"].get("eTag") or record["s3"]["object"].get("etag") or ""
        uploads.append(Upload(bucket, key, str(etag).strip('"')))
    return uploads
