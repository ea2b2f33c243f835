"""Secrets from the environment; values never shown."""

from __future__ import annotations

import pytest

from textnlp.adapters.secrets import OPENAI_API_KEY, EnvSecrets, secrets_provider
from textnlp.adapters.secrets.aws import AwsSecretsManager
from textnlp.config import load_settings
from textnlp.errors import ConfigError


def test_env_secret_names() -> None:
    secrets = EnvSecrets({"TEXTNLP_SECRET_MODELS_OPENAI_API_KEY": "sk-1", "OPENAI_API_KEY": "sk-2"})
    assert secrets.get(OPENAI_API_KEY).get_secret_value() == "sk-1"
    assert EnvSecrets({"OPENAI_API_KEY": "sk-2"}).get(OPENAI_API_KEY).get_secret_value() == "sk-2"
    assert "sk-1" not in repr(secrets.get(OPENAI_API_KEY))


def test_missing_secret_names_the_variables() -> None:
    with pytest.raises(ConfigError, match="TEXTNLP_SECRET_MODELS_ANTHROPIC_API_KEY"):
        EnvSecrets({}).get("models/anthropic-api-key")


def test_provider_follows_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(secrets_provider(load_settings()), EnvSecrets)
    aws = secrets_provider(
        load_settings(
            profile="aws",
            environment="staging",
            auth={"jwt_secret": "x" * 40},
            database={"url": "postgresql+psycopg://u@db/textnlp"},
        )
    )
    assert isinstance(aws, AwsSecretsManager)
    assert aws.path("models/openai-api-key") == "/textnlp/staging/models/openai-api-key"
