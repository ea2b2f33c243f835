"""The ``SecretsProvider`` protocol and the design's secret names."""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

# The design's names below ``/textnlp/<env>/``, owned by the deployment contract.
from textnlp.deployment import ANTHROPIC_API_KEY, HUGGINGFACE_TOKEN, JWT_SECRET, OPENAI_API_KEY

__all__ = [
    "ANTHROPIC_API_KEY",
    "HUGGINGFACE_TOKEN",
    "JWT_SECRET",
    "OPENAI_API_KEY",
    "SecretsProvider",
]


class SecretsProvider(Protocol):
    """Looks secrets up by name. ``get`` blocks (call it from a thread in async code)."""

    def get(self, name: str) -> SecretStr:
        """The secret ``name``; ``ConfigError`` (naming it, never showing it) when missing."""
        ...

    def find(self, name: str) -> SecretStr | None:
        """The secret ``name``, or None when it is not set."""
        ...
