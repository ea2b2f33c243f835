"""Secrets: API keys and credentials by name, from the environment or AWS Secrets Manager.

Names are the design's paths below ``/textnlp/<env>/`` (``models/openai-api-key``...);
``secrets_provider(settings)`` picks the implementation the settings ask for. Values are never
logged nor put in error messages or reprs.
"""

from textnlp.adapters.secrets.aws import AwsSecretsManager
from textnlp.adapters.secrets.base import (
    ANTHROPIC_API_KEY,
    HUGGINGFACE_TOKEN,
    JWT_SECRET,
    OPENAI_API_KEY,
    SecretsProvider,
)
from textnlp.adapters.secrets.env import EnvSecrets
from textnlp.adapters.secrets.factory import secrets_provider

__all__ = [
    "ANTHROPIC_API_KEY",
    "HUGGINGFACE_TOKEN",
    "JWT_SECRET",
    "OPENAI_API_KEY",
    "AwsSecretsManager",
    "EnvSecrets",
    "SecretsProvider",
    "secrets_provider",
]
