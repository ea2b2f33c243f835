"""TextNLP: synthetic text datasets from language models.

The curated public API. Names are imported on first use, so ``import textnlp`` (and the Lambda
handlers under ``textnlp.lambdas``) loads nothing but this file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textnlp.config import Settings, load_settings
    from textnlp.domain import (
        ChatMessage,
        Completion,
        GenerationParams,
        GenerationRequest,
        ModelInfo,
        Record,
        TokenDelta,
        Usage,
    )
    from textnlp.errors import CandidatesExhausted, DatasetFailed, QuotaExceeded, TextNLPError
    from textnlp.generation.pipeline import DatasetSummary
    from textnlp.generation.recipes.recipe import Recipe
    from textnlp.library import agenerate_dataset, generate_dataset, unload_models

__version__ = "0.1.0"

_EXPORTS = {
    "CandidatesExhausted": "textnlp.errors",
    "ChatMessage": "textnlp.domain",
    "Completion": "textnlp.domain",
    "DatasetFailed": "textnlp.errors",
    "DatasetSummary": "textnlp.generation.pipeline",
    "GenerationParams": "textnlp.domain",
    "GenerationRequest": "textnlp.domain",
    "ModelInfo": "textnlp.domain",
    "QuotaExceeded": "textnlp.errors",
    "Recipe": "textnlp.generation.recipes.recipe",
    "Record": "textnlp.domain",
    "Settings": "textnlp.config",
    "TextNLPError": "textnlp.errors",
    "TokenDelta": "textnlp.domain",
    "Usage": "textnlp.domain",
    "agenerate_dataset": "textnlp.library",
    "generate_dataset": "textnlp.library",
    "load_settings": "textnlp.config",
    "unload_models": "textnlp.library",
}

__all__ = [
    "CandidatesExhausted",
    "ChatMessage",
    "Completion",
    "DatasetFailed",
    "DatasetSummary",
    "GenerationParams",
    "GenerationRequest",
    "ModelInfo",
    "QuotaExceeded",
    "Recipe",
    "Record",
    "Settings",
    "TextNLPError",
    "TokenDelta",
    "Usage",
    "__version__",
    "agenerate_dataset",
    "generate_dataset",
    "load_settings",
    "unload_models",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'textnlp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
