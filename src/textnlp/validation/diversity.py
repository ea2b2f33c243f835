"""Dataset diversity: lexical (distinct n-grams over a sample) and semantic (embeddings).

Both are measured on a seeded sample of the same size whatever the dataset's size, because
corpus distinct-n falls as a corpus grows and pairwise distances cost O(sample^2).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from textnlp.validation.embedding import Vectors
from textnlp.validation.text import ngrams, words

DEFAULT_SAMPLE = 1000
DEFAULT_CLUSTER_THRESHOLD = 0.8


def sample_indices(n: int, size: int, seed: int = 0) -> list[int]:
    """A reproducible sample of ``min(n, size)`` indices, in ascending order."""
    if n <= size:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), size))


def corpus_distinct(texts: Sequence[str], n: int) -> float | None:
    """Unique word n-grams / all word n-grams over all ``texts`` (0-1, None without n-grams)."""
    unique: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = ngrams(words(text), n)
        unique.update(grams)
        total += len(grams)
    return len(unique) / total if total else None


def semantic_diversity(vectors: Vectors) -> float | None:
    """Mean pairwise cosine distance (1 - cosine) of unit vectors, 0-2 (about 0-1 for text)."""
    n = len(vectors)
    if n < 2:
        return None
    total = vectors.sum(axis=0)
    # sum over i != j of v_i . v_j = |sum v|^2 - sum |v_i|^2 (= n for unit vectors).
    mean_cos = (float(total @ total) - float((vectors * vectors).sum())) / (n * (n - 1))
    return min(max(1.0 - mean_cos, 0.0), 2.0)  # float rounding put identical texts below 0


def nearest_neighbour_similarity(vectors: Vectors) -> npt.NDArray[np.float32]:
    """For each vector, the cosine of its most similar other vector."""
    if len(vectors) < 2:
        return np.zeros(0, dtype=np.float32)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.asarray(sims.max(axis=1), dtype=np.float32)


def count_clusters(vectors: Vectors, threshold: float = DEFAULT_CLUSTER_THRESHOLD) -> int:
    """Clusters of a greedy leader clustering: a vector joins the first leader within ``threshold``
    cosine, otherwise it leads a new cluster. Deterministic, O(n x clusters)."""
    if len(vectors) == 0:
        return 0
    leaders = np.empty_like(vectors)
    count = 0
    for vector in vectors:
        if count and float(np.max(leaders[:count] @ vector)) >= threshold:
            continue
        leaders[count] = vector
        count += 1
    return count
