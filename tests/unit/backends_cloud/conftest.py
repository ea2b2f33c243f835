"""Fixtures for the cloud backends: a CloudContext without sleeping, fake AWS credentials."""

from __future__ import annotations

import pytest

from textnlp.adapters.secrets import EnvSecrets
from textnlp.backends.cloud import CloudContext
from textnlp.backends.pricing import Price, PriceTable
from textnlp.backends.resilience import CircuitRegistry, RetryPolicy


@pytest.fixture
def context() -> CloudContext:
    return CloudContext(
        secrets=EnvSecrets({"ANTHROPIC_API_KEY": "sk-ant-test", "OPENAI_API_KEY": "sk-test"}),
        prices=PriceTable({"anthropic.claude-v2": Price(0.008, 0.024)}),
        circuits=CircuitRegistry(failure_threshold=3, reset_after_s=60),
        retry=RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
        aws_region="us-east-1",
    )


@pytest.fixture
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
