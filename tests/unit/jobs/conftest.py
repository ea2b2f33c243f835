"""A job service on a migrated SQLite file with fake backends (no network, no services)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import job_service
from textnlp.config import Settings, load_settings
from textnlp.services.jobs import JobService


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    register()
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    monkeypatch.setenv("TEXTNLP_MODELS_FILE", str(models))
    return load_settings(
        generation={"response_cache": False, "max_count": 1000},
        queue={"visibility_timeout_s": 30, "chunk_size": 8, "batch_threshold": 500},
    )


@pytest.fixture
def jobs(settings: Settings) -> Iterator[JobService]:
    with job_service(settings) as service:
        yield service
