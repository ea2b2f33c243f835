"""Secrets from AWS Secrets Manager, at ``/textnlp/<env>/<name>``, cached for ``ttl_s``.

The client is created on first use (nothing at import time). A secret stored as JSON with one
key (``{"api_key": "..."}``) or with a ``value`` key is unwrapped; any other string is used as
is. Lookups are logged by name only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from textnlp.adapters.aws_outage import aws_unavailable
from textnlp.deployment import secret_path, unwrap_secret
from textnlp.errors import ConfigError

log = logging.getLogger(__name__)


class AwsSecretsManager:
    def __init__(
        self,
        environment: str,
        *,
        ttl_s: float = 300.0,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.environment = environment
        self.ttl_s = ttl_s
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, SecretStr | None]] = {}

    def path(self, name: str) -> str:
        return secret_path(self.environment, name)

    def _secrets_client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "secretsmanager", region_name=self._region, endpoint_url=self._endpoint_url
            )
        return self._client

    def _fetch(self, name: str) -> SecretStr | None:
        from botocore.exceptions import BotoCoreError, ClientError

        path = self.path(name)
        log.debug("reading secret %s from Secrets Manager", path)
        try:
            # An outage (throttled, 5xx, unreachable) is the service's, and passes.
            with aws_unavailable("secrets", f"Secrets Manager (secret {path})"):
                answer = self._secrets_client().get_secret_value(SecretId=path)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return None
            raise ConfigError(f"cannot read secret {path}: {code or 'error'}") from None
        except BotoCoreError as exc:
            raise ConfigError(f"cannot read secret {path}: {type(exc).__name__}") from None
        raw = answer.get("SecretString")
        if raw is None and answer.get("SecretBinary") is not None:
            try:
                raw = answer["SecretBinary"].decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(f"secret {path} is binary, not UTF-8 text") from None
        return SecretStr(unwrap_secret(raw)) if raw else None

    def find(self, name: str) -> SecretStr | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and now - cached[0] < self.ttl_s:
                return cached[1]
        value = self._fetch(name)
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def get(self, name: str) -> SecretStr:
        value = self.find(name)
        if value is None:
            raise ConfigError(f"secret {self.path(name)} does not exist in Secrets Manager")
        return value

    def __repr__(self) -> str:
        return f"AwsSecretsManager(environment={self.environment!r}, ttl_s={self.ttl_s})"
