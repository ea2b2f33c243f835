from __future__ import annotations

from pathlib import Path

import pytest

from textnlp.config import LOCAL_JWT_SECRET, load_settings
from textnlp.errors import ConfigError


def test_local_profile_is_the_default_and_lives_under_home(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "h")
    assert settings.profile == "local"
    assert settings.database_url == f"sqlite:///{(tmp_path / 'h' / 'textnlp.db').as_posix()}"
    assert settings.storage_root == tmp_path / "h" / "storage"
    assert settings.queue.backend == "local"
    assert settings.storage.backend == "local"


def test_home_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEXTNLP_HOME", str(tmp_path / "elsewhere"))
    assert load_settings().home == tmp_path / "elsewhere"


def test_nested_values_use_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_GENERATION__CONCURRENCY", "8")
    monkeypatch.setenv("TEXTNLP_DATABASE__URL", "postgresql+psycopg://u@h/db")
    settings = load_settings()
    assert settings.generation.concurrency == 8
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_aws_profile_switches_components_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_PROFILE", "aws")
    monkeypatch.setenv("TEXTNLP_ENVIRONMENT", "production")
    monkeypatch.setenv("TEXTNLP_QUEUE__BACKEND", "local")
    settings = load_settings()
    assert settings.storage.backend == "s3"
    assert settings.storage.bucket == "textnlp-production"
    assert settings.secrets.backend == "aws"
    assert settings.queue.backend == "local"  # explicit setting wins
    assert settings.secret_path("api/jwt-secret") == "/textnlp/production/api/jwt-secret"


def test_a_bad_value_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_GENERATION__CONCURRENCY", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert message.startswith("invalid setting TEXTNLP_GENERATION__CONCURRENCY")
    assert "'lots'" in message
    assert "\n" not in message


def test_unknown_profile_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_PROFILE", "cloud")
    with pytest.raises(ConfigError, match="TEXTNLP_PROFILE"):
        load_settings()


def test_default_jwt_secret_refused_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_PROFILE", "aws")
    monkeypatch.setenv("TEXTNLP_SECRETS__BACKEND", "env")
    with pytest.raises(ConfigError, match="jwt_secret is the local default"):
        load_settings()
    monkeypatch.setenv("TEXTNLP_AUTH__JWT_SECRET", "a-real-secret-from-the-vault")
    assert load_settings().auth.jwt_secret.get_secret_value() != LOCAL_JWT_SECRET
