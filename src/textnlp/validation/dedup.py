"""Exact duplicates (normalised-text hash) and near duplicates (MinHash LSH + union-find).

Near duplicates: each distinct normalised text gets a MinHash signature of its word 3-gram set
(``minhash.py``); texts whose signatures agree on a whole band of a ``datasketch.MinHashLSH``
built for the Jaccard ``threshold`` (its band/row choice) are candidate pairs, kept when their
estimated Jaccard similarity reaches the threshold, and joined into clusters with union-find.
The LSH buckets are found by sorting each band of the signature matrix rather than by filling
datasketch's tables, which cost about 4 KB a record (a bytes object, a set and a dict entry per
band): the same buckets, hence the same pairs, in a few bytes a record. Work grows about
linearly with the number of texts (plus the candidate pairs, which LSH keeps few).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from textnlp.validation.inputs import checked_texts
from textnlp.validation.minhash import (
    DEFAULT_NGRAM,
    DEFAULT_NUM_PERM,
    DEFAULT_SEED,
    Signatures,
    estimated_jaccard,
    signatures,
)
from textnlp.validation.text import text_digest

Indices = npt.NDArray[np.int64]

DEFAULT_THRESHOLD = 0.8
#: LSH band/row choice weighs a missed pair 9x a false candidate: candidates are verified on
#: their signatures anyway, so extra candidates cost little and pairs near the threshold are kept.
LSH_WEIGHTS = (0.1, 0.9)
#: Buckets larger than this are joined to their first member only (a star), not all pairs.
_MAX_BUCKET_PAIRS = 64


@dataclass(frozen=True)
class DuplicateGroups:
    """Groups of record indices (each of 2+ records, sorted, largest group first)."""

    groups: list[list[int]]
    total: int

    @property
    def redundant(self) -> int:
        """Records that could be dropped keeping one per group."""
        return sum(len(g) - 1 for g in self.groups)

    @property
    def rate(self) -> float:
        return self.redundant / self.total if self.total else 0.0


@dataclass(frozen=True)
class NearDuplicates(DuplicateGroups):
    threshold: float = DEFAULT_THRESHOLD
    num_perm: int = DEFAULT_NUM_PERM
    bands: int = 0
    rows: int = 0
    #: Estimated Jaccard similarity of the verified pairs (for the similarity plot).
    pair_similarity: list[float] = field(default_factory=list)


def exact_duplicates(texts: Sequence[str]) -> DuplicateGroups:
    """Records whose normalised text (NFKC without format characters, case-folded, whitespace
    collapsed) is equal."""
    checked_texts(texts, "texts")
    slots, _ = _text_slots(texts)
    return DuplicateGroups(_groups(slots), len(texts))


def find_near_duplicates(
    texts: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    ngram: int = DEFAULT_NGRAM,
    seed: int = DEFAULT_SEED,
) -> NearDuplicates:
    """Clusters of records whose word ``ngram``-gram sets have Jaccard >= ``threshold``.

    Exact duplicates fall in the same cluster too. Texts without words are left out. Pairs
    sharing an LSH bucket are kept when their MinHash-estimated Jaccard similarity reaches
    ``threshold``.
    """
    checked_texts(texts, "texts")
    check_threshold("near-duplicate threshold", threshold)
    return _near_duplicates(texts, threshold, num_perm, ngram, seed)


def check_threshold(name: str, threshold: float) -> None:
    """A Jaccard threshold is in (0, 1]: ``InvalidParameter`` otherwise (NaN too)."""
    if not 0.0 < threshold <= 1.0:  # NaN fails every comparison
        from textnlp.errors import InvalidParameter

        raise InvalidParameter(f"{name} must be in (0, 1], got {threshold}")


def _near_duplicates(
    texts: Sequence[str], threshold: float, num_perm: int, ngram: int, seed: int
) -> NearDuplicates:
    # One signature per distinct normalised text; duplicates are re-attached at the end.
    rep_of, firsts = _text_slots(texts)
    sigs, has_words = signatures(
        [texts[i] for i in firsts.tolist()], num_perm=num_perm, ngram=ngram, seed=seed
    )
    lsh = new_lsh(threshold, num_perm)
    left, right = _candidate_pairs(sigs, np.flatnonzero(has_words), lsh.b, lsh.r)
    similarity = estimated_jaccard(sigs, left, right)
    keep = similarity >= threshold
    roots = _roots(len(firsts), left[keep], right[keep])
    # Records without words are in no cluster.
    clusters = np.where(has_words[rep_of], roots[rep_of], -1)
    return NearDuplicates(
        groups=_groups(clusters),
        total=len(texts),
        threshold=threshold,
        num_perm=num_perm,
        bands=lsh.b,
        rows=lsh.r,
        pair_similarity=similarity[keep].round(4).tolist(),
    )


def _text_slots(texts: Sequence[str]) -> tuple[Indices, Indices]:
    """(slot of every text, first text of every slot): texts of equal normalised text share a
    slot; slots are numbered in order of first appearance. 16 bytes of hash a text, in NumPy
    (a dict of hex digests cost ~150 bytes a text)."""
    digests = bytearray(16 * len(texts))
    for i, text in enumerate(texts):
        digests[16 * i : 16 * i + 16] = text_digest(text)
    keys = np.frombuffer(digests, dtype=np.dtype((np.void, 16)))
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first)
    slot = np.empty_like(by_appearance)
    slot[by_appearance] = np.arange(len(by_appearance))
    return slot[inverse.reshape(-1)], first[by_appearance]


def new_lsh(threshold: float, num_perm: int) -> Any:  # datasketch.MinHashLSH (untyped)
    """An empty LSH index for Jaccard ``threshold`` in (0, 1].

    Above about 0.99 datasketch's band/row choice is a single band, which it refuses to build
    ("The number of bands are too small"); two bands of half the permutations then find the
    pairs instead (candidates are verified against ``threshold`` anyway)."""
    from datasketch import MinHashLSH

    try:
        return MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
    except ValueError:
        return MinHashLSH(num_perm=num_perm, params=(2, num_perm // 2))


def _candidate_pairs(
    sigs: Signatures, keys: Indices, bands: int, rows: int
) -> tuple[Indices, Indices]:
    """Pairs (left < right, sorted) of ``keys`` whose signatures are equal on all ``rows``
    values of one of ``bands`` bands: what sharing a bucket of datasketch's ``MinHashLSH``
    means (its bucket key is the band's values), found by sorting each band."""
    n = len(sigs)
    codes = [np.empty(0, dtype=np.int64)]  # a pair as left * n + right: sorts as the tuple
    for band in range(bands):
        values = np.ascontiguousarray(sigs[keys, band * rows : (band + 1) * rows])
        bucket_keys = values.view(np.dtype((np.void, values.itemsize * rows))).reshape(-1)
        # Stable: within a bucket, members stay in ascending order.
        order = np.argsort(bucket_keys, kind="stable")
        left, right = _bucket_pairs(keys[order], _run_starts(bucket_keys[order]))
        codes.append(left * n + right)
    unique = np.unique(np.concatenate(codes))
    return unique // n, unique % n


def _bucket_pairs(members: Indices, starts: Indices) -> tuple[Indices, Indices]:
    """The pairs of buckets laid end to end (``members``, each bucket ascending, beginning at
    ``starts``): every pair of a bucket of at most ``_MAX_BUCKET_PAIRS`` members, and the first
    member with each other one of a larger bucket (a star)."""
    sizes = np.diff(np.append(starts, len(members)))
    size = np.repeat(sizes, sizes)  # of each member's bucket
    position = np.arange(len(members)) - np.repeat(starts, sizes)  # in its bucket
    star = (size > _MAX_BUCKET_PAIRS) & (position > 0)
    lefts = [members[np.flatnonzero(star) - position[star]]]
    rights = [members[star]]
    small = (size > 1) & (size <= _MAX_BUCKET_PAIRS)
    members, size, position = members[small], size[small], position[small]
    # Member p and member p + d are in one bucket when p's position + d is within its size.
    for d in range(1, int(size.max(initial=1))):
        pair = position[:-d] + d < size[:-d]
        lefts.append(members[:-d][pair])
        rights.append(members[d:][pair])
    return np.concatenate(lefts), np.concatenate(rights)


def _roots(n: int, left: Indices, right: Indices) -> Indices:
    """Root (smallest member of its cluster) of every element of ``range(n)`` after joining
    each (left[i], right[i]); union-find over the elements of a pair only."""
    roots = np.arange(n, dtype=np.int64)
    if len(left):
        nodes, inverse = np.unique(np.concatenate((left, right)), return_inverse=True)
        inverse = inverse.reshape(-1)
        parent = _union_find(len(nodes), inverse[: len(left)], inverse[len(left) :])
        roots[nodes] = nodes[parent]  # nodes ascend: the smallest node is the smallest index
    return roots


def _union_find(n: int, left: Indices, right: Indices) -> Indices:
    """Root of every element after joining each (left[i], right[i])."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(x) for x in range(n)], dtype=np.int64)


def _groups(labels: Indices) -> list[list[int]]:
    """The indices of each label that two or more hold (a negative label is none), each group
    ascending, largest group first."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    starts = _run_starts(ordered)
    sizes = np.diff(np.append(starts, len(order)))
    chosen = (sizes > 1) & (ordered[starts] >= 0)
    return _sorted_groups(
        order[start : start + size].tolist()
        for start, size in zip(starts[chosen].tolist(), sizes[chosen].tolist(), strict=True)
    )


def _run_starts(ordered: npt.NDArray[Any]) -> Indices:
    """Where each run of equal values of ``ordered`` begins."""
    if not len(ordered):
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


def _sorted_groups(groups: Iterable[list[int]]) -> list[list[int]]:
    return sorted((sorted(g) for g in groups), key=lambda g: (-len(g), g[0]))
