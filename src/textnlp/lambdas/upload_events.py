"""The prompt uploads named by an S3 ``ObjectCreated`` event (``Records[].s3``).

The event is the S3 notification shape; the EventBridge rule in
``infra/textnlp_infra/constructs/orchestration.py`` rebuilds it from an "Object Created" event.
S3 notifications URL-encode keys (``+`` for a space); EventBridge's events carry the key as
stored, and the rule marks each record it builds so (``KEY_ENCODING_FIELD``): a key is decoded
by what its record is, never by what it looks like (``c++.jsonl`` and ``report%41.jsonl`` are
keys too).
A malformed event raises ``ValueError`` naming what is missing, so it fails the invocation and
lands in the dead-letter queue with that reason; a well-formed record that is no prompt upload
(another prefix, a folder) is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger(__name__)

#: ``textnlp.adapters.storage.Keys.USER_UPLOADS`` (that package needs more than this asset has).
UPLOADS_PREFIX = "prompts/user-uploads/"
#: ``s3.object.<KEY_ENCODING_FIELD>: RAW_KEY`` says the record's key is the object's own.
KEY_ENCODING_FIELD = "keyEncoding"
RAW_KEY = "none"


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    #: The object's ETag without quotes; empty when the event carries none.
    etag: str


def object_key(raw_key: str, s3_object: Mapping[str, Any]) -> str:
    """The object's key: ``raw_key`` as it is when its record says so, else URL-decoded."""
    return raw_key if s3_object.get(KEY_ENCODING_FIELD) == RAW_KEY else unquote_plus(raw_key)


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
        key = object_key(raw_key, record["s3"]["object"])
        if not key.startswith(UPLOADS_PREFIX) or key.endswith("/"):
            log.info("record %d: %s is not a prompt upload: skipped", number, key)
            continue
        etag = record["s3"]["object"].get("eTag") or record["s3"]["object"].get("etag") or ""
        uploads.append(Upload(bucket, key, str(etag).strip('"')))
    return uploads
