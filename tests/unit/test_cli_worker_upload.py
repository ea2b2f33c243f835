"""``textnlp worker``'s batch-processor run: the prompt file comes as ``--s3-key`` and
``--s3-bucket`` or, as the state machine's container overrides give them, ``S3_KEY`` and
``S3_BUCKET`` (the deployment's contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from textnlp.cli import worker as worker_cli
from textnlp.cli.main import app

KEY = "prompts/user-uploads/alice/prompts.jsonl"


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[Any, str]]:
    seen: list[tuple[Any, str]] = []

    async def run(config: Any, options: Any, key: str) -> int:
        seen.append((config, key))
        return 0

    monkeypatch.setattr(worker_cli, "_run", run)
    monkeypatch.setenv("TEXTNLP_HOME", str(tmp_path))
    monkeypatch.setenv("TEXTNLP_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("TEXTNLP_STORAGE__BUCKET", "configured")
    for name in ("S3_KEY", "S3_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_the_container_overrides_name_the_upload(
    runs: list[tuple[Any, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_KEY", KEY)
    monkeypatch.setenv("S3_BUCKET", "uploads")
    result = CliRunner().invoke(app, ["worker", "--queues", "batch", "--once"])
    assert result.exit_code == 0, result.output
    [(config, key)] = runs
    assert key == KEY and config.storage.bucket == "uploads"


def test_the_options_name_it_too(runs: list[tuple[Any, str]]) -> None:
    arguments = ["worker", "-q", "batch", "--once", "--s3-key", KEY, "--s3-bucket", "uploads"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    [(config, key)] = runs
    assert key == KEY and config.storage.bucket == "uploads"


def test_without_them_the_worker_submits_nothing(runs: list[tuple[Any, str]]) -> None:
    assert CliRunner().invoke(app, ["worker", "--once"]).exit_code == 0
    [(config, key)] = runs
    assert key == "" and config.storage.bucket == "configured"
