"""Leakage: generated records too close to a reference (seed or evaluation) dataset.

A record leaks when its word 3-gram Jaccard similarity with some reference reaches
``ngram_threshold`` (MinHash LSH over the references, verified on the signatures), or when the
cosine of its MiniLM embedding with some reference reaches ``embedding_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from textnlp.validation.dedup import check_threshold, new_lsh
from textnlp.validation.embedding import Vectors
from textnlp.validation.inputs import checked_texts
from textnlp.validation.minhash import DEFAULT_NUM_PERM, DEFAULT_SEED, signatures

DEFAULT_NGRAM_THRESHOLD = 0.5
DEFAULT_EMBEDDING_THRESHOLD = 0.95


class LeakageMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    reference_index: int
    #: Estimated Jaccard similarity of word 3-gram sets, 0-1 (None if below the LSH's reach).
    ngram_jaccard: float | None
    #: Cosine of the MiniLM embeddings, -1..1 (None without embeddings).
    cosine: float | None


def ngram_matches(
    texts: Sequence[str],
    references: Sequence[str],
    *,
    threshold: float = DEFAULT_NGRAM_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
) -> dict[int, tuple[int, float]]:
    """record index -> (closest reference, estimated Jaccard) for records at/above ``threshold``."""
    from datasketch import LeanMinHash

    check_threshold("leakage n-gram threshold", threshold)
    ref_sigs, ref_ok = signatures(references, num_perm=num_perm)
    sigs, ok = signatures(texts, num_perm=num_perm)
    lsh = new_lsh(threshold, num_perm)
    with lsh.insertion_session() as session:
        for key in np.flatnonzero(ref_ok).tolist():
            session.insert(
                key,
                LeanMinHash(seed=DEFAULT_SEED, hashvalues=ref_sigs[key], scheme="affine32"),
                check_duplication=False,
            )
    found: dict[int, tuple[int, float]] = {}
    for i in np.flatnonzero(ok).tolist():
        candidates = lsh.query(
            LeanMinHash(seed=DEFAULT_SEED, hashvalues=sigs[i], scheme="affine32")
        )
        if not candidates:
            continue
        refs = np.array(sorted(candidates), dtype=np.int64)
        scores = (ref_sigs[refs] == sigs[i]).mean(axis=1)
        best = int(np.argmax(scores))
        if scores[best] >= threshold:
            found[i] = (int(refs[best]), float(scores[best]))
    return found


def nearest_reference(
    vectors: Vectors, ref_vectors: Vectors
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """(index of the most similar reference, its cosine) for every vector, in chunks."""
    best_idx = np.zeros(len(vectors), dtype=np.int64)
    best_sim = np.full(len(vectors), -1.0, dtype=np.float32)
    if len(ref_vectors) == 0:
        return best_idx, best_sim
    for start in range(0, len(vectors), 1024):
        sims = vectors[start : start + 1024] @ ref_vectors.T
        best_idx[start : start + 1024] = sims.argmax(axis=1)
        best_sim[start : start + 1024] = sims.max(axis=1)
    return best_idx, best_sim


def find_leakage(
    texts: Sequence[str],
    references: Sequence[str],
    *,
    ngram_threshold: float = DEFAULT_NGRAM_THRESHOLD,
    embedding_threshold: float | None = DEFAULT_EMBEDDING_THRESHOLD,
    vectors: Vectors | None = None,
    ref_vectors: Vectors | None = None,
) -> tuple[list[LeakageMatch], npt.NDArray[np.float32] | None]:
    """(leaking records, best reference cosine of every record or None without embeddings)."""
    checked_texts(texts, "texts")
    checked_texts(references, "references")
    by_ngram = ngram_matches(texts, references, threshold=ngram_threshold)
    best_sim: npt.NDArray[np.float32] | None = None
    best_idx: npt.NDArray[np.int64] | None = None
    if embedding_threshold is not None and vectors is not None and ref_vectors is not None:
        best_idx, best_sim = nearest_reference(vectors, ref_vectors)
    matches: list[LeakageMatch] = []
    for i in range(len(texts)):
        gram = by_ngram.get(i)
        cos = float(best_sim[i]) if best_sim is not None else None
        by_embedding = (
            cos is not None and embedding_threshold is not None and cos >= embedding_threshold
        )
        if gram is None and not by_embedding:
            continue
        ref = gram[0] if gram is not None else int(best_idx[i]) if best_idx is not None else 0
        matches.append(
            LeakageMatch(
                index=i, reference_index=ref, ngram_jaccard=gram[1] if gram else None, cosine=cos
            )
        )
    return matches, best_sim
