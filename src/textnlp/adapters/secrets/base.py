"""The ``SecretsProvider`` protocol and the design's secret names."""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

#: Names below ``/textnlp/<env>/`` (the design's Secrets Manager layout).
OPENAI_API_KEY = "models/openai-api-key"
ANTHROPIC_API_KEY = "models/anthropic-api-key"
HUGGINGFACE_TOKEN = "models/huggingface-token"
DATABASE_URL = "database/connection-string"
JWT_SECRET = "api/jwt-secret"


class SecretsProvider(Protocol):
    """Looks secrets up by name. ``get`` blocks (call it from a thread in async code)."""

    def get(self, name: str) -> SecretStr:
        """The secret ``name``; ``ConfigError`` (naming it, never showing it) when missing."""
        ...

    def find(self, name: str) -> SecretStr | None:
        """The secret ``name``, or None when it is not set."""
        ...
