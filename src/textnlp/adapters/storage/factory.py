"""Build the blob storage of the settings (the only place that knows the backends)."""

from __future__ import annotations

from typing import Any

from textnlp.adapters.storage.base import BlobStorage
from textnlp.adapters.storage.local import LocalStorage
from textnlp.adapters.storage.s3 import S3Storage
from textnlp.config import Settings
from textnlp.errors import ConfigError


def s3_client(settings: Settings) -> Any:
    import boto3

    return boto3.client(
        "s3", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url
    )


def open_storage(settings: Settings, *, client: Any = None) -> BlobStorage:
    if settings.storage.backend == "s3":
        if not settings.storage.bucket:
            raise ConfigError("storage.bucket is empty; set TEXTNLP_STORAGE__BUCKET")
        return S3Storage(client or s3_client(settings), settings.storage.bucket)
    return LocalStorage(settings.storage_root)
