"""What a failed job tells its owner: the platform's own failures (a storage bucket the
deployment lacks, a role it may not use) say their class only; their text, which names buckets,
keys, accounts and roles, is for the operators' log. Real parts: moto's S3 server, SQLite."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import job_service, run_worker
from textnlp.adapters.db.schema import upgrade_database
from textnlp.config import load_settings
from textnlp.services.job_models import JobSpec, Owner

ALICE = Owner(id="alice")
BUCKET = "textnlp-internal-results-bucket"


def test_a_storage_failure_reaches_the_log_not_the_jobs_owner(
    tmp_path: Path, aws_env: str, caplog: pytest.LogCaptureFixture
) -> None:
    register()
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    settings = load_settings(
        home=tmp_path / "home",
        models_file=models,
        # The deployment's bucket does not exist: S3 answers NoSuchBucket, not an outage.
        storage={"backend": "s3", "bucket": BUCKET},
        aws={"region": "us-east-1", "endpoint_url": aws_env},
        queue={"max_receives": 1, "retry_delay_s": 0},
    )
    upgrade_database(settings.database_url)
    with job_service(settings) as jobs:
        view = jobs.submit(ALICE, JobSpec(prompts=["hi"], model="fake-fast"))
    with caplog.at_level(logging.WARNING, logger="textnlp.worker"):
        run_worker(settings)
    with job_service(settings) as jobs:
        failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed"
    error = failed.error or ""
    assert "internal error (" in error, error
    for internal in ("PutObject", "bucket does not exist", BUCKET, "generated/"):
        assert internal not in error, error
    # The operators read the whole of it.
    assert "The specified bucket does not exist" in caplog.text
