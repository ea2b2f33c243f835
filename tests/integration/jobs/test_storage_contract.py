"""One contract for every BlobStorage: a local directory and S3 (moto's server)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.job_stores import aws_client
from textnlp.adapters.storage import BlobStorage, Keys
from textnlp.adapters.storage.factory import open_storage
from textnlp.adapters.storage.local import LocalStorage
from textnlp.adapters.storage.s3 import S3Storage
from textnlp.config import load_settings
from textnlp.errors import InvalidInput, NotFound, ServiceUnavailable


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStorage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "storage")
        return
    endpoint = request.getfixturevalue("aws_env")
    client = aws_client("s3", endpoint)
    bucket = f"textnlp-test-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    yield S3Storage(client, bucket)


def test_put_get_list_delete(storage: BlobStorage) -> None:
    key = Keys.batch_result("job1", "jsonl")
    assert key == "generated/batch-jobs/job1/records.jsonl"
    storage.put_bytes(key, b"hello\n")
    storage.put_bytes(Keys.upload("u1", "p.csv"), b"prompt\nhi\n")
    assert storage.exists(key) and storage.get_bytes(key) == b"hello\n"
    assert storage.size(key) == 6
    assert storage.list(Keys.BATCH_JOBS) == [key]
    assert storage.list("prompts/user-uploads/u1/") == ["prompts/user-uploads/u1/p.csv"]
    storage.put_bytes(Keys.upload("u1", "q.csv"), b"12345")
    storage.put_bytes(Keys.upload("u10", "r.csv"), b"not u1's")
    assert storage.usage(Keys.upload("u1", "")) == 10 + 5  # u10 is not under u1/
    assert storage.usage("nothing/here/") == 0
    storage.delete(key)
    assert not storage.exists(key)
    with pytest.raises(NotFound):
        storage.get_bytes(key)


def test_streaming_write_and_read_of_a_large_object(storage: BlobStorage, tmp_path: Path) -> None:
    payload = bytes(range(256)) * (4096 * 12)  # 12 MiB: several multipart parts on S3
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    storage.put_file("backups/big.bin", source)
    assert storage.size("backups/big.bin") == len(payload)
    chunks = list(storage.open_read("backups/big.bin"))
    assert len(chunks) > 1 and b"".join(chunks) == payload
    storage.put_stream("backups/stream.bin", io.BytesIO(payload[:1000]))
    target = tmp_path / "down" / "s.bin"
    storage.download("backups/stream.bin", target)
    assert target.read_bytes() == payload[:1000]


def test_date_layout_and_bad_keys(storage: BlobStorage) -> None:
    key = Keys.generated("run.jsonl")
    assert key.startswith("generated/") and key.count("/") == 4
    for bad in ("../escape", "a/../../b", "", "/abs", "a//b"):
        with pytest.raises(InvalidInput):
            storage.put_bytes(bad, b"x")


def test_presigned_url(storage: BlobStorage) -> None:
    storage.put_bytes("validation/results/j.json", b'{"ok": true}')
    url = storage.presigned_url("validation/results/j.json", expires_s=60)
    if isinstance(storage, LocalStorage):
        assert url is None  # the API serves local objects itself
        return
    assert url is not None and "Signature" in url or "X-Amz-Signature" in str(url)
    answer = httpx.get(str(url))
    assert answer.status_code == 200 and answer.content == b'{"ok": true}'


def test_the_aws_profiles_storage_hands_out_sigv4_urls_that_download(aws_env: str) -> None:
    """The factory's client, as the API builds it: S3 refuses a SigV2 URL to an SSE-KMS
    object, so the URL is SigV4, and the endpoint override (moto) still serves it."""
    bucket = f"textnlp-test-{uuid.uuid4().hex[:8]}"
    aws_client("s3", aws_env).create_bucket(Bucket=bucket)
    settings = load_settings(
        {
            "TEXTNLP_PROFILE": "aws",
            "TEXTNLP_ENVIRONMENT": "production",
            "TEXTNLP_DATABASE__URL": "postgresql+psycopg://u@db/textnlp",
            "TEXTNLP_STORAGE__BUCKET": bucket,
            "TEXTNLP_AWS__ENDPOINT_URL": aws_env,
        }
    )
    storage = open_storage(settings)
    key = Keys.batch_result("j1", "jsonl")
    storage.put_bytes(key, b'{"n": 1}\n')
    url = httpx.URL(str(storage.presigned_url(key, expires_s=60)))
    assert url.params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert url.params["X-Amz-Credential"].endswith("/us-east-1/s3/aws4_request")
    assert f"{url.scheme}://{url.netloc.decode()}" == aws_env  # path style on moto's address
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == b'{"n": 1}\n'


def test_a_prefix_lists_what_starts_with_it_wherever_it_ends(storage: BlobStorage) -> None:
    for key in ("prompts/user-uploads/u1/file-a.jsonl", "prompts/user-uploads/u1/p.csv",
                "prompts/user-uploads/u10/file-b.jsonl", "generated/x.jsonl"):  # fmt: skip
        storage.put_bytes(key, b"x")
    assert storage.list("prompts/user-uploads/u1/file-") == ["prompts/user-uploads/u1/file-a.jsonl"]
    assert len(storage.list("prompts/user-uploads/u1")) == 3  # u10 too, as S3 answers
    assert storage.list("prompts/user-uploads/u2/") == []
    assert len(storage.list("")) == 4


def test_a_file_system_that_refuses_writes_is_an_outage(tmp_path: Path) -> None:
    """Full, read-only or a path through a file: the storage is unavailable (a worker waits),
    not the job at fault (it spent its attempts in milliseconds)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the storage's folder should be")
    storage = LocalStorage(blocker / "storage")
    with pytest.raises(ServiceUnavailable) as raised:
        storage.put_bytes("generated/x.jsonl", b"x")
    assert raised.value.details["dependency"] == "storage"
    assert str(tmp_path) not in raised.value.message


def test_an_archived_object_says_so_and_starts_its_restore(aws_env: str) -> None:
    """The lifecycle rule moves generated files to Glacier after 90 days: a download of one
    (a presigned URL, or the bytes) was S3's InvalidObjectState, a 403 or a 500. Now it is
    ``Archived`` (409) naming the wait, and the restore has begun."""
    from textnlp.errors import Archived

    client = aws_client("s3", aws_env)
    bucket = f"textnlp-test-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    storage = S3Storage(client, bucket)
    key = Keys.batch_result("old", "jsonl")
    client.put_object(Bucket=bucket, Key=key, Body=b"{}\n", StorageClass="GLACIER")
    with pytest.raises(Archived, match="restore has begun"):
        storage.readable(key)
    assert "ongoing-request" in client.head_object(Bucket=bucket, Key=key).get("Restore", "")
    other = Keys.batch_result("older", "jsonl")
    client.put_object(Bucket=bucket, Key=other, Body=b"[]\n", StorageClass="GLACIER")
    with pytest.raises(Archived):  # read without asking first: S3's InvalidObjectState
        storage.get_bytes(other)
    # moto restores at once (S3 takes hours): once restored, the copy reads as any object.
    storage.readable(other)
    assert storage.get_bytes(other) == b"[]\n"
    fresh = Keys.batch_result("new", "jsonl")
    storage.put_bytes(fresh, b"{}\n")
    storage.readable(fresh)  # a STANDARD object is readable
    with pytest.raises(NotFound):
        storage.readable(Keys.batch_result("none", "jsonl"))
