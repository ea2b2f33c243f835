"""A provider's reason for a failed batch, as the job's owner reads it: without the platform's
S3 locations and ARNs (the worker's log keeps the whole text)."""

from __future__ import annotations

import pytest

from textnlp.backends.batch.base import public_batch_error


@pytest.mark.parametrize(
    ("reason", "public"),
    [
        # Bedrock's ModelInvocationJob ``message``.
        (
            "Unable to write to s3://acme-internal/batch/out/ using "
            "arn:aws:iam::123456789012:role/acme-bedrock-batch.",
            "Unable to write to <S3 location> using <iam ARN>.",
        ),
        # SageMaker's ``FailureReason``, an object URL and a KMS key.
        (
            "ClientError: Failed to download data. Access denied for "
            "https://acme-internal.s3.us-east-1.amazonaws.com/in/part-0.jsonl "
            "(key arn:aws:kms:us-east-1:123456789012:key/1a2b3c)",
            "ClientError: Failed to download data. Access denied for <S3 location> (key <kms ARN>)",
        ),
        # A reason about the input only keeps its words.
        (
            "The number of records is below the minimum of 100.",
            "The number of records is below the minimum of 100.",
        ),
    ],
)
def test_the_platforms_locations_and_roles_are_left_out(reason: str, public: str) -> None:
    assert public_batch_error(reason) == public
