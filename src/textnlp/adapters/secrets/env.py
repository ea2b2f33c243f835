"""Secrets from the environment (and ``.env`` through settings): the local profile.

``models/openai-api-key`` is read from ``TEXTNLP_SECRET_MODELS_OPENAI_API_KEY`` first, then from
the variable its tool already uses (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``HF_TOKEN``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import SecretStr

from textnlp.adapters.secrets.base import (
    ANTHROPIC_API_KEY,
    HUGGINGFACE_TOKEN,
    JWT_SECRET,
    OPENAI_API_KEY,
)
from textnlp.errors import ConfigError

WELL_KNOWN = {
    OPENAI_API_KEY: ("OPENAI_API_KEY",),
    ANTHROPIC_API_KEY: ("ANTHROPIC_API_KEY",),
    HUGGINGFACE_TOKEN: ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    JWT_SECRET: ("TEXTNLP_AUTH__JWT_SECRET",),
}


def variable_name(name: str) -> str:
    """``models/openai-api-key`` -> ``TEXTNLP_SECRET_MODELS_OPENAI_API_KEY``."""
    return "TEXTNLP_SECRET_" + name.upper().replace("/", "_").replace("-", "_")


class EnvSecrets:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ

    def candidates(self, name: str) -> tuple[str, ...]:
        return (variable_name(name), *WELL_KNOWN.get(name, ()))

    def find(self, name: str) -> SecretStr | None:
        for variable in self.candidates(name):
            value = self._environ.get(variable)
            if value:
                return SecretStr(value)
        return None

    def get(self, name: str) -> SecretStr:
        value = self.find(name)
        if value is None:
            names = " or ".join(self.candidates(name))
            raise ConfigError(f"secret {name!r} is not set (set {names})")
        return value

    def __repr__(self) -> str:
        return "EnvSecrets()"
