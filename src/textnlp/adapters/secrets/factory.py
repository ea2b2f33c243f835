"""The secrets provider the settings ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textnlp.adapters.secrets.aws import AwsSecretsManager
from textnlp.adapters.secrets.base import SecretsProvider
from textnlp.adapters.secrets.env import EnvSecrets

if TYPE_CHECKING:
    from textnlp.config import Settings


def secrets_provider(settings: Settings) -> SecretsProvider:
    if settings.secrets.backend == "aws":
        return AwsSecretsManager(
            settings.environment,
            ttl_s=settings.secrets.ttl_s,
            region=settings.aws.region,
            endpoint_url=settings.aws.endpoint_url,
        )
    return EnvSecrets()
