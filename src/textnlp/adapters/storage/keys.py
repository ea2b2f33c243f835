"""The design's S3 key layout, in one place (local storage uses the same keys as paths)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from textnlp.errors import InvalidInput

_SAFE = re.compile(r"^[A-Za-z0-9!_.*'()/-][A-Za-z0-9!_.*'() /=-]*$")


class Keys:
    TEMPLATES = "prompts/templates/"
    USER_UPLOADS = "prompts/user-uploads/"
    GENERATED = "generated/"
    BATCH_JOBS = "generated/batch-jobs/"
    VALIDATION = "validation/results/"
    BACKUPS = "backups/"

    @staticmethod
    def generated(name: str, when: datetime | None = None) -> str:
        """``generated/yyyy/mm/dd/<name>``"""
        when = when or datetime.now(UTC)
        return f"generated/{when:%Y/%m/%d}/{name}"

    @staticmethod
    def batch_result(job_id: str, fmt: str) -> str:
        return f"generated/batch-jobs/{job_id}/records.{fmt}"

    @staticmethod
    def kept_result(job_id: str, fmt: str) -> str:
        """A cancelled or failed job's file of the records it made: a new key each time."""
        return f"generated/batch-jobs/{job_id}/records-kept-{uuid.uuid4().hex[:12]}.{fmt}"

    @staticmethod
    def validation_result(job_id: str) -> str:
        return f"validation/results/{job_id}.json"

    @staticmethod
    def upload(owner_id: str, name: str) -> str:
        return f"prompts/user-uploads/{owner_id}/{name}"


def check_key(key: str) -> str:
    """Refuse keys that could escape a local root or that S3 would mangle."""
    parts = key.split("/")
    if (
        not key
        or not _SAFE.match(key)
        or any(p in {"", ".", ".."} for p in parts[:-1])
        or (parts[-1] in {"", ".", ".."})
    ):
        raise InvalidInput(f"invalid storage key {key!r}")
    return key
