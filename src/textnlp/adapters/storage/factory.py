"""Build the blob storage of the settings (the only place that knows the backends)."""

from __future__ import annotations

import os
from typing import Any

from textnlp.adapters.storage.base import BlobStorage
from textnlp.adapters.storage.local import LocalStorage
from textnlp.adapters.storage.s3 import S3Storage
from textnlp.config import Settings
from textnlp.errors import ConfigError


def s3_client(settings: Settings) -> Any:
    """The S3 client of the storage.

    Its presigned URLs must be SigV4: botocore presigns with SigV2 unless told, and S3
    refuses SigV2 for objects under SSE-KMS, which the deployed bucket uses. The regional
    virtual-hosted endpoint matches the region SigV4 signs for (the global one may redirect,
    and a redirect breaks a signature that covers the host). An endpoint override (moto in
    tests, the rehearsal; in the settings or boto3's ``AWS_ENDPOINT_URL``) keeps botocore's
    choice: path style for an address like ``127.0.0.1`` or ``localhost``.
    """
    import boto3
    from botocore.config import Config

    s3: dict[str, Any] = {"us_east_1_regional_endpoint": "regional"}
    overridden = settings.aws.endpoint_url or any(
        os.environ.get(name) for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    )
    if not overridden:
        s3["addressing_style"] = "virtual"
    return boto3.client(
        "s3",
        region_name=settings.aws.region,
        endpoint_url=settings.aws.endpoint_url,
        config=Config(signature_version="s3v4", s3=s3),
    )


def open_storage(settings: Settings, *, client: Any = None) -> BlobStorage:
    if settings.storage.backend == "s3":
        if not settings.storage.bucket:
            raise ConfigError("storage.bucket is empty; set TEXTNLP_STORAGE__BUCKET")
        return S3Storage(client or s3_client(settings), settings.storage.bucket)
    return LocalStorage(settings.storage_root)
