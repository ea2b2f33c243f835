"""TextNLP: synthetic text datasets from language models.

The curated public API; everything else is reachable through its subpackages.
"""

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
from textnlp.errors import TextNLPError
from textnlp.generation.pipeline import DatasetSummary
from textnlp.library import agenerate_dataset, generate_dataset

__version__ = "0.1.0"

__all__ = [
    "ChatMessage",
    "Completion",
    "DatasetSummary",
    "GenerationParams",
    "GenerationRequest",
    "ModelInfo",
    "Record",
    "Settings",
    "TextNLPError",
    "TokenDelta",
    "Usage",
    "__version__",
    "agenerate_dataset",
    "generate_dataset",
    "load_settings",
]
