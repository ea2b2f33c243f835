"""``BatchFiles`` in memory for the provider batch tests: a job's provider files keyed as in the
platform's bucket, with ``s3://`` URIs as S3 storage gives them."""

from __future__ import annotations

JOB = "0f3c9a1e5b7d4c2a8e6f1b3d5a7c9e0f"
BUCKET = "textnlp-test"


class MemoryFiles:
    """``BatchFiles`` in memory, keyed as in the platform's bucket."""

    def __init__(self, job_id: str = JOB) -> None:
        self.prefix = f"generated/batch-jobs/{job_id}/provider/"
        self.objects: dict[str, bytes] = {}

    def key(self, name: str) -> str:
        return self.prefix + name

    def put(self, name: str, data: bytes) -> str:
        self.objects[self.key(name)] = data
        return self.key(name)

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def find(self, name: str) -> bytes | None:
        return self.objects.get(self.key(name))

    def list(self, key_prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(key_prefix))

    def s3_uri(self, key: str) -> str | None:
        return f"s3://{BUCKET}/{key}"
