from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from textnlp.bootstrap import Platform
from textnlp.config import LOCAL_JWT_SECRET, env_name, load_settings, unknown_variables
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
    monkeypatch.setenv("TEXTNLP_DATABASE__URL", "postgresql+psycopg://u@db/textnlp")
    monkeypatch.setenv("TEXTNLP_QUEUE__BACKEND", "local")
    settings = load_settings()
    assert settings.storage.backend == "s3"
    assert settings.storage.bucket == "textnlp-production"
    assert settings.secrets.backend == "aws"
    assert settings.queue.backend == "local"  # explicit setting wins
    assert settings.auth.session_store == "dynamodb"
    assert settings.auth.session_table == "textnlp-production-sessions"


def test_the_session_store_stays_the_database_locally_unless_set() -> None:
    assert load_settings(environ={}).auth.session_store == "database"
    chosen = load_settings(
        environ={"TEXTNLP_AUTH__SESSION_STORE": "dynamodb", "TEXTNLP_ENVIRONMENT": "staging"}
    )
    assert chosen.auth.session_table == "textnlp-staging-sessions"
    named = load_settings(
        environ={"TEXTNLP_AUTH__SESSION_STORE": "dynamodb", "TEXTNLP_AUTH__SESSION_TABLE": "t"}
    )
    assert named.auth.session_table == "t"


def test_a_bad_value_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_GENERATION__CONCURRENCY", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert message.startswith("invalid setting TEXTNLP_GENERATION__CONCURRENCY")
    assert "lots" not in message  # values are never echoed: they may be secrets
    assert "\n" not in message


def test_unknown_profile_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_PROFILE", "cloud")
    with pytest.raises(ConfigError, match="TEXTNLP_PROFILE"):
        load_settings()


def test_default_jwt_secret_refused_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_PROFILE", "aws")
    monkeypatch.setenv("TEXTNLP_DATABASE__URL", "postgresql+psycopg://u@db/textnlp")
    monkeypatch.setenv("TEXTNLP_SECRETS__BACKEND", "env")
    with pytest.raises(ConfigError, match="jwt_secret is the local default"):
        load_settings()
    monkeypatch.setenv("TEXTNLP_AUTH__JWT_SECRET", STRONG_SECRET)
    assert load_settings().auth.jwt_secret.get_secret_value() != LOCAL_JWT_SECRET


#: 43 random URL-safe characters (secrets.token_urlsafe(32)), as an operator would generate.
STRONG_SECRET = "q3Jx0vT8bN2kLw7YcR5mHs9dFa1GeUo4Pi6ZtVn_XbE"

WEAK_SECRETS = [
    pytest.param("x", id="one-byte"),
    pytest.param("changeme", id="changeme"),
    pytest.param("a-real-secret-from-the-vault", id="28-bytes"),
    pytest.param(LOCAL_JWT_SECRET.upper(), id="local-default-upper-cased"),
    pytest.param(LOCAL_JWT_SECRET + " ", id="local-default-trailing-space"),
    pytest.param(" " + STRONG_SECRET, id="leading-space"),
    pytest.param(STRONG_SECRET + "\n", id="trailing-newline"),
    pytest.param("changeme-changeme-changeme-changeme", id="placeholder"),
    pytest.param("your-secret-key-for-example-use-only-0123", id="example-placeholder"),
    pytest.param("x" * 64, id="one-character-repeated"),
]


@pytest.mark.parametrize("secret", WEAK_SECRETS)
def test_weak_jwt_secrets_are_refused_outside_local(secret: str) -> None:
    environ = {
        "TEXTNLP_PROFILE": "aws",
        "TEXTNLP_DATABASE__URL": "postgresql+psycopg://u@db/textnlp",
        "TEXTNLP_SECRETS__BACKEND": "env",
        "TEXTNLP_AUTH__JWT_SECRET": secret,
    }
    with pytest.raises(ConfigError, match="auth.jwt_secret") as refused:
        load_settings(environ=environ)
    if len(secret.strip()) >= 8:
        assert secret.strip() not in refused.value.message  # never echoed
    assert load_settings(environ={"TEXTNLP_AUTH__JWT_SECRET": secret}).profile == "local"


@pytest.mark.parametrize("secret", WEAK_SECRETS)
def test_weak_jwt_secrets_from_secrets_manager_are_refused(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class StoredSecret:
        def get(self, name: str) -> SecretStr:
            return SecretStr(secret)

    monkeypatch.setattr(
        "textnlp.adapters.secrets.factory.secrets_provider", lambda settings: StoredSecret()
    )
    settings = load_settings(
        environ={
            "TEXTNLP_PROFILE": "aws",
            "TEXTNLP_DATABASE__URL": "postgresql+psycopg://u@db/textnlp",
        }
    )
    assert settings.secrets.backend == "aws"
    with pytest.raises(ConfigError, match="the JWT secret"):
        Platform(settings).auth_settings()
    monkeypatch.setattr(
        "textnlp.adapters.secrets.factory.secrets_provider",
        lambda settings: type("Strong", (), {"get": lambda self, name: SecretStr(STRONG_SECRET)})(),
    )
    assert Platform(settings).auth_settings().auth.jwt_secret.get_secret_value() == STRONG_SECRET


def test_one_platform_builds_one_secrets_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two providers meant two boto3 clients and two caches: a rotation seen by one stays
    # unseen by the other.
    built: list[object] = []

    class StoredSecret:
        def __init__(self) -> None:
            built.append(self)

        def get(self, name: str) -> SecretStr:
            return SecretStr(STRONG_SECRET)

    monkeypatch.setattr(
        "textnlp.adapters.secrets.factory.secrets_provider", lambda settings: StoredSecret()
    )
    settings = load_settings(
        environ={
            "TEXTNLP_PROFILE": "aws",
            "TEXTNLP_DATABASE__URL": "postgresql+psycopg://u@db/textnlp",
        }
    )
    platform = Platform(settings)
    provider = platform.secrets
    platform.auth_settings()
    platform.auth_settings()
    assert built == [provider]


def test_the_deployment_provides_database_and_cache_as_parts() -> None:
    settings = load_settings(
        environ={
            "TEXTNLP_DATABASE__HOST": "textnlp.cluster-abc.us-east-1.rds.amazonaws.com",
            "TEXTNLP_DATABASE__USER": "textnlp_admin",
            "TEXTNLP_DATABASE__PASSWORD": "p@ss:w/rd%",
            "TEXTNLP_DATABASE__SSLMODE": "require",
            "TEXTNLP_CACHE__HOST": "clustercfg.textnlp.cache.amazonaws.com",
            "TEXTNLP_CACHE__AUTH_TOKEN": "t0ken+/=",
            "TEXTNLP_CACHE__TLS": "true",
            "TEXTNLP_CACHE__CLUSTER": "true",
        }
    )
    assert settings.database_url == (
        "postgresql+psycopg://textnlp_admin:p%40ss%3Aw%2Frd%25@"
        "textnlp.cluster-abc.us-east-1.rds.amazonaws.com:5432/textnlp?sslmode=require"
    )
    assert (
        settings.cache_url == "rediss://:t0ken%2B%2F%3D@clustercfg.textnlp.cache.amazonaws.com:6379"
    )
    assert settings.cache.cluster
    # Secrets stay out of the representation.
    assert "p@ss" not in repr(settings) and "t0ken" not in repr(settings)


def test_no_cache_server_and_sqlite_by_default(tmp_path: Path) -> None:
    settings = load_settings(environ={}, home=tmp_path)
    assert settings.cache_url is None
    assert settings.database_url.startswith("sqlite:///")


def test_an_explicit_environment_is_read_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTNLP_GENERATION__CONCURRENCY", "8")
    assert load_settings(environ={}).generation.concurrency == 32
    assert (
        load_settings(environ={"TEXTNLP_GENERATION__CONCURRENCY": "4"}).generation.concurrency == 4
    )


def test_an_unknown_variable_is_refused_by_name_not_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEXTNLP_CACHE__AUTH_TOKNE", "super-secret-token")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message == (
        "unknown setting TEXTNLP_CACHE__AUTH_TOKNE: no such field in Settings"
    )
    # The CLI's client options and the tests' own variables are not settings.
    assert (
        unknown_variables(
            {
                "TEXTNLP_API_URL": "x",
                "TEXTNLP_API_TOKEN": "y",
                "TEXTNLP_API_KEY": "the README's OpenAI example exports it",
                "TEXTNLP_TEST_REDIS_URL": "z",
            }
        )
        == []
    )
    # Mapping settings take any key below them.
    assert unknown_variables({"TEXTNLP_MODELS__PRICES__MY_MODEL__INPUT_PER_1K": "1"}) == []


@pytest.mark.parametrize(
    ("name", "section"),
    [
        ("TEXTNLP_API__TRUSTED_PROXIES", "TEXTNLP_API"),  # a list: JSON
        ("TEXTNLP_MODELS__PRICES", "TEXTNLP_MODELS"),  # a mapping
        ("TEXTNLP_API", "TEXTNLP_API"),  # a section
    ],
)
def test_a_value_that_is_not_json_is_one_line(name: str, section: str) -> None:
    """pydantic-settings' SettingsError was a traceback and exit 1."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={name: "10.0.0.0/8"})
    assert caught.value.message.startswith(f"a value under {section} is not JSON")
    assert "10.0.0.0/8" not in caught.value.message.split("(e.g.")[0]  # never the value


def test_the_env_secrets_backends_variables_are_not_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docs/backends.md names them; every command refused to start with one set.
    monkeypatch.setenv("TEXTNLP_SECRET_MODELS_OPENAI_API_KEY", "sk-local")
    settings = load_settings()
    from textnlp.adapters.secrets.env import EnvSecrets

    assert settings.profile == "local"
    assert EnvSecrets().get("models/openai-api-key").get_secret_value() == "sk-local"


def test_a_secret_in_a_bad_setting_is_never_printed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"TEXTNLP_DATABASE__PORT": "hunter2-secret"})
    assert "hunter2" not in caught.value.message
    assert "TEXTNLP_DATABASE__PORT" in caught.value.message


def test_env_name_checks_the_schema() -> None:
    assert env_name("database", "host") == "TEXTNLP_DATABASE__HOST"
    assert env_name("environment") == "TEXTNLP_ENVIRONMENT"
    with pytest.raises(ConfigError, match=r"no setting database\.hots \(TEXTNLP_DATABASE__HOTS\)"):
        env_name("database", "hots")
    with pytest.raises(ConfigError):
        env_name("database")  # a section is not a variable


def test_the_aws_profile_refuses_to_start_without_its_database() -> None:
    with pytest.raises(ConfigError, match="the aws profile needs its database"):
        load_settings(environ={"TEXTNLP_PROFILE": "aws"})


def test_a_misspelt_setting_in_dot_env_is_refused_as_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TEXTNLP_GENERATION__CONCURRENCY=5\n")
    assert load_settings().generation.concurrency == 5  # .env is read
    (tmp_path / ".env").write_text("TEXTNLP_GENERATON__CONCURRENCY=5\n")
    with pytest.raises(ConfigError, match="unknown setting TEXTNLP_GENERATON__CONCURRENCY"):
        load_settings()
