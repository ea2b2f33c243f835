"""The authorizer's settings, read from the application's own variables without pydantic.

The Lambda asset has no pydantic, so it cannot load ``textnlp.config.Settings``; it reads the
few fields it needs by their schema names (prefix ``TEXTNLP_``, nested ``__``) with the
schema's defaults, and the infra names them through ``textnlp.config.env_name`` (a unit test
checks both agree). The signing key is ``TEXTNLP_AUTH__JWT_SECRET``, or, with
``TEXTNLP_SECRETS__BACKEND=aws``, the secret the API reads: ``/textnlp/<environment>/
api/jwt-secret`` in Secrets Manager (read once per container; a rotated key is picked up by the
next cold start). There is no fallback to the local development key, which anyone can sign with.

With ``TEXTNLP_AUTH__SESSION_STORE=dynamodb`` the authorizer also reads the session table
(``TEXTNLP_AUTH__SESSION_TABLE``, by default the schema's ``textnlp-<environment>-sessions``),
so that a logged-out or revoked token is refused at the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from textnlp.deployment import JWT_SECRET, secret_path, session_table_name, unwrap_secret

log = logging.getLogger(__name__)

ENV_PREFIX = "TEXTNLP_"
#: The values ``textnlp.config`` accepts for the fields checked here.
ENVIRONMENTS = ("dev", "staging", "production")
SECRETS_BACKENDS = ("env", "aws")
ALGORITHMS = ("HS256", "HS384", "HS512")
SESSION_STORES = ("database", "dynamodb")
#: Settings fields the authorizer reads (paths in ``Settings``) with the schema's defaults.
DEFAULTS: dict[tuple[str, ...], str] = {
    ("environment",): "dev",
    ("secrets", "backend"): "env",
    ("auth", "issuer"): "textnlp",
    ("auth", "audience"): "textnlp-api",
    ("auth", "jwt_algorithm"): "HS256",
    ("auth", "session_store"): "database",
    ("auth", "session_table"): "",
}
#: The key, which has no default here (the schema's is the local development key).
KEY_PATH = ("auth", "jwt_secret")
SETTINGS_READ = (*DEFAULTS, KEY_PATH)


class AuthorizerConfigError(Exception):
    """The function's environment or its secret is unusable; every request is denied."""


def variable(*path: str) -> str:
    """``variable("auth", "issuer")`` -> ``"TEXTNLP_AUTH__ISSUER"`` (``env_name``'s rule)."""
    return ENV_PREFIX + "__".join(part.upper() for part in path)


@dataclass(frozen=True)
class AuthorizerSettings:
    environment: str
    issuer: str
    audience: str
    algorithm: str
    key: str = field(repr=False)
    #: The DynamoDB session table to check tokens against; empty: no revocation check here
    #: (the database's store, which only the app can reach).
    session_table: str = ""

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], *, secrets_client: Any = None
    ) -> AuthorizerSettings:
        """``secrets_client``: a Secrets Manager client (tests); boto3's by default."""

        def read(*path: str) -> str:
            return environ.get(variable(*path), "").strip() or DEFAULTS[path]

        environment = _one_of(read("environment"), ENVIRONMENTS, variable("environment"))
        backend = _one_of(
            read("secrets", "backend"), SECRETS_BACKENDS, variable("secrets", "backend")
        )
        algorithm = _one_of(
            read("auth", "jwt_algorithm"), ALGORITHMS, variable("auth", "jwt_algorithm")
        )
        if backend == "aws":
            key = read_secret(secret_path(environment, JWT_SECRET), secrets_client)
        else:
            key = environ.get(variable(*KEY_PATH), "")
            if not key:
                raise AuthorizerConfigError(
                    f"{variable(*KEY_PATH)} is not set and {variable('secrets', 'backend')} "
                    "is not aws"
                )
        store = _one_of(
            read("auth", "session_store"), SESSION_STORES, variable("auth", "session_store")
        )
        table = ""
        if store == "dynamodb":
            table = read("auth", "session_table") or session_table_name(environment)
        return cls(
            environment, read("auth", "issuer"), read("auth", "audience"), algorithm, key, table
        )


def _one_of(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise AuthorizerConfigError(f"{name} must be one of {', '.join(allowed)}")
    return value


def read_secret(path: str, client: Any = None) -> str:
    """The secret at ``path`` (JSON wrappers removed); its value is never logged."""
    if client is None:
        import boto3
        from botocore.config import Config

        # Short timeouts: API Gateway gives the whole authorizer 10 seconds.
        client = boto3.client(
            "secretsmanager",
            config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2}),
        )
    log.info("reading the signing key from Secrets Manager at %s", path)
    try:
        answer = client.get_secret_value(SecretId=path)
    except Exception as exc:  # botocore's errors; the Lambda must not die on them
        raise AuthorizerConfigError(f"cannot read {path}: {type(exc).__name__}") from None
    raw = answer.get("SecretString")
    if raw is None and answer.get("SecretBinary") is not None:
        raw = bytes(answer["SecretBinary"]).decode("utf-8")
    key = unwrap_secret(str(raw or ""))
    if not key:
        raise AuthorizerConfigError(f"the secret {path} is empty")
    return key
