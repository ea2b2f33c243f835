"""Pydantic models shared by all layers."""

from textnlp.domain.generation import (
    MAX_SEED,
    MAX_TOKENS_LIMIT,
    ChatMessage,
    Completion,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    ModelInfo,
    TokenDelta,
    Usage,
)
from textnlp.domain.records import CellProvenance, Provenance, Record

__all__ = [
    "MAX_SEED",
    "MAX_TOKENS_LIMIT",
    "ChatMessage",
    "Completion",
    "FinishReason",
    "GenerationParams",
    "GenerationRequest",
    "ModelInfo",
    "CellProvenance",
    "Provenance",
    "Record",
    "TokenDelta",
    "Usage",
]
