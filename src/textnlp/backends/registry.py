"""The model catalogue: model id -> backend + defaults.

Built-in entries live in ``catalogue.yaml`` beside this file; users add or override entries in
their own YAML file (``TEXTNLP_MODELS_FILE`` or ``$TEXTNLP_HOME/models.yaml``)::

    models:
      - id: my-llama
        backend: transformers
        path: /models/llama-7b
        context_length: 4096
        defaults: {temperature: 0.8}

Backend classes are imported only when a model is used, so listing the catalogue stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from textnlp import strict_yaml
from textnlp.backends.options import OPTIONS, BackendOptions
from textnlp.backends.spec import ModelSpec
from textnlp.domain import ModelInfo
from textnlp.errors import ConfigError, ModelNotFound, first_error, quoted

if TYPE_CHECKING:
    from textnlp.backends.base import Backend

#: backend name -> "module:Class"; imported lazily.
BACKENDS: dict[str, str] = {
    "llamacpp": "textnlp.backends.llamacpp:LlamaCppBackend",
    "transformers": "textnlp.backends.transformers:TransformersBackend",
    "bedrock": "textnlp.backends.bedrock:BedrockBackend",
    "sagemaker": "textnlp.backends.sagemaker:SageMakerBackend",
    "openai": "textnlp.backends.openai_compat:OpenAICompatBackend",
    "anthropic": "textnlp.backends.anthropic_api:AnthropicBackend",
}


def register_backend(name: str, target: str, options: type[BackendOptions] | None = None) -> None:
    """Make another backend class (``"module:Class"``) usable from catalogue entries, with the
    model its ``options`` are checked against (None: a free mapping)."""
    BACKENDS[name] = target
    if options is not None:
        OPTIONS[name] = options


BUILTIN_CATALOGUE = Path(__file__).with_name("catalogue.yaml")


def backend_class(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown backend {name!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


class ModelCatalogue:
    """The models this installation knows, built-in first, then the user's file."""

    def __init__(self, specs: Iterable[ModelSpec]) -> None:
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            self._specs[spec.id] = spec

    @classmethod
    def load(cls, user_file: Path | None = None) -> ModelCatalogue:
        specs = read_catalogue_file(BUILTIN_CATALOGUE)
        if user_file is not None:
            specs += read_catalogue_file(user_file)
        return cls(specs)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._specs

    def ids(self) -> list[str]:
        return list(self._specs)

    def get(self, model_id: str) -> ModelSpec:
        try:
            return self._specs[model_id]
        except KeyError:
            raise ModelNotFound(
                f"unknown model {quoted(model_id)}; `textnlp models list` shows the catalogue",
                model=model_id,
            ) from None

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def describe(self, model_id: str) -> ModelInfo:
        spec = self.get(model_id)
        return backend_class(spec.backend).describe(spec)

    def create(self, model_id: str, **options: Any) -> Backend:
        """A backend for ``model_id``, not yet loaded (``async with`` or ``load()`` it).

        ``options`` go to the backend's constructor (e.g. a shared cloud ``context``).
        """
        spec = self.get(model_id)
        return backend_class(spec.backend)(spec, **options)


def read_catalogue_file(path: Path) -> list[ModelSpec]:
    try:
        # strict_yaml: a key given twice, or an impossible date (a traceback), is a YAMLError
        raw: Any = strict_yaml.load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read model catalogue {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"model catalogue {path} is not valid YAML: {exc}") from None
    entries = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"model catalogue {path} needs a top-level 'models:' list")
    specs = []
    for number, entry in enumerate(entries, 1):
        try:
            specs.append(ModelSpec.model_validate(entry))
        except ValidationError as exc:
            reason = first_error(exc, root="entry")
            raise ConfigError(f"model catalogue {path}, entry {number}: {reason}") from None
    return specs
