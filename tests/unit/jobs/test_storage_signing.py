"""The S3 storage's presigned URLs, as the aws profile's factory builds them (signed locally,
no network): SigV4 for the region, since S3 refuses SigV2 for the bucket's SSE-KMS objects."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from textnlp.adapters.storage.factory import open_storage
from textnlp.config import load_settings

KEY = "generated/batch-jobs/j1/result.jsonl"


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static credentials, and no endpoint, profile or config file of the developer's."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_a_presigned_url_is_sigv4_for_the_region_on_its_regional_endpoint(region: str) -> None:
    settings = load_settings(
        {
            "TEXTNLP_PROFILE": "aws",
            "TEXTNLP_ENVIRONMENT": "production",
            "TEXTNLP_DATABASE__URL": "postgresql+psycopg://u@db/textnlp",
            "TEXTNLP_AWS__REGION": region,
        }
    )
    url = open_storage(settings).presigned_url(KEY)
    assert url is not None
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert "Signature" not in query and "AWSAccessKeyId" not in query  # SigV2's
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].endswith(f"/{region}/s3/aws4_request")
    # The host SigV4 signed is the bucket's regional one: the global endpoint may redirect.
    assert parts.netloc == f"textnlp-production.s3.{region}.amazonaws.com"
    assert parts.path == f"/{KEY}"
