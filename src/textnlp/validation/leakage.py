"""Leakage: generated records too close to a reference (seed or evaluation) dataset.

A record leaks when, over the folded word 3-gram sets that MinHash shingles (``minhash.py``):

* its Jaccard similarity with some reference reaches ``ngram_threshold``. The references to
  compare it with are the candidates of a MinHash LSH index, so a pair near the threshold can
  be missed (never compared); a compared pair's Jaccard is exact (counted on the sets).
* or the containment of some reference in it, |S(ref) & S(record)| / |S(ref)|, reaches
  ``containment_threshold``: a reference copied whole into a longer record, which the symmetric
  Jaccard cannot see once the record is about twice as long. Exact: an index of the references'
  rarest shingles finds every pair that can reach the threshold (prefix filtering), and each
  is counted. Only references with at least ``MIN_CONTAINMENT_SHINGLES`` 3-grams are tested.
* or the cosine of its MiniLM embedding with some reference reaches ``embedding_threshold``.
  Only texts the model can read (``Embedder.readable``) are compared this way: two texts it
  reads as ``[UNK]`` alone embed alike whatever they say.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from textnlp.validation.dedup import check_threshold, new_lsh
from textnlp.validation.embedding import Mask, Vectors
from textnlp.validation.inputs import checked_texts
from textnlp.validation.minhash import DEFAULT_NUM_PERM, DEFAULT_SEED, shingle_sets, signatures
from textnlp.validation.models import LeakageMatch

DEFAULT_NGRAM_THRESHOLD = 0.5
DEFAULT_CONTAINMENT_THRESHOLD = 0.8
#: A reference with fewer distinct word 3-grams (under ten words) is not tested for
#: containment: a short phrase ("thank you so much") is in many honest records.
MIN_CONTAINMENT_SHINGLES = 8
DEFAULT_EMBEDDING_THRESHOLD = 0.95
_BATCH = 1 << 20  # rows of the temporaries of the index probes (8-16 bytes each)

Ints = npt.NDArray[np.int64]


class Overlap(NamedTuple):
    """A record's closest references by word 3-grams (among the pairs compared)."""

    jaccard_reference: int
    jaccard: float
    containment_reference: int | None
    containment: float | None


def ngram_matches(
    texts: Sequence[str],
    references: Sequence[str],
    *,
    threshold: float = DEFAULT_NGRAM_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
) -> dict[int, tuple[int, float]]:
    """record index -> (closest reference, exact Jaccard) for records at/above ``threshold``."""
    found = ngram_overlaps(texts, references, threshold=threshold, num_perm=num_perm)
    return {i: (o.jaccard_reference, o.jaccard) for i, o in found.items() if o.jaccard >= threshold}


def ngram_overlaps(
    texts: Sequence[str],
    references: Sequence[str],
    *,
    threshold: float = DEFAULT_NGRAM_THRESHOLD,
    containment_threshold: float | None = None,
    num_perm: int = DEFAULT_NUM_PERM,
) -> dict[int, Overlap]:
    """record index -> its ``Overlap`` for every record compared with some reference: the LSH
    candidates at Jaccard ``threshold``, and with ``containment_threshold`` every pair where
    that share of the reference can be in the record."""
    check_threshold("leakage n-gram threshold", threshold)
    if containment_threshold is not None:
        check_threshold("leakage containment threshold", containment_threshold)
    rec_h, rec_off = shingle_sets(texts)
    ref_h, ref_off = shingle_sets(references)
    pairs = [lsh_candidates(texts, references, threshold=threshold, num_perm=num_perm)]
    if containment_threshold is not None:
        pairs.append(containment_candidates(rec_h, rec_off, ref_h, ref_off, containment_threshold))
    rec, ref = _unique_pairs(
        np.concatenate([p[0] for p in pairs]),
        np.concatenate([p[1] for p in pairs]),
        len(references),
    )
    shared = shared_shingles(rec, ref, rec_h, rec_off, ref_h, ref_off)
    rec_size, ref_size = np.diff(rec_off)[rec], np.diff(ref_off)[ref]
    with np.errstate(invalid="ignore", divide="ignore"):
        jaccard = shared / (rec_size + ref_size - shared)
        containment = np.where(ref_size >= MIN_CONTAINMENT_SHINGLES, shared / ref_size, -1.0)
    found: dict[int, Overlap] = {}
    best_c = _best_per_record(rec, ref, containment)  # the same records as best_j
    for i, (j_ref, j) in _best_per_record(rec, ref, jaccard).items():
        c_ref, c = best_c[i]
        if c < 0 or containment_threshold is None:  # no reference long enough, or not asked
            found[i] = Overlap(j_ref, j, None, None)
        else:
            found[i] = Overlap(j_ref, j, c_ref, c)
    return found


def lsh_candidates(
    texts: Sequence[str],
    references: Sequence[str],
    *,
    threshold: float = DEFAULT_NGRAM_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
) -> tuple[Ints, Ints]:
    """(records, references): the pairs a MinHash LSH at Jaccard ``threshold`` compares."""
    from datasketch import LeanMinHash

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
    recs: list[int] = []
    refs: list[int] = []
    for i in np.flatnonzero(ok).tolist():
        candidates = lsh.query(
            LeanMinHash(seed=DEFAULT_SEED, hashvalues=sigs[i], scheme="affine32")
        )
        recs.extend([i] * len(candidates))
        refs.extend(candidates)
    return np.asarray(recs, dtype=np.int64), np.asarray(refs, dtype=np.int64)


def containment_candidates(
    rec_h: npt.NDArray[np.uint32],
    rec_off: Ints,
    ref_h: npt.NDArray[np.uint32],
    ref_off: Ints,
    threshold: float,
) -> tuple[Ints, Ints]:
    """(records, references): every pair where a ``threshold`` share of a reference of at least
    ``MIN_CONTAINMENT_SHINGLES`` shingles can be in the record, and a few more.

    Prefix filtering: a record holding k = ``threshold`` x n of a reference's n shingles holds
    at least one of any n - k + 1 of them, so only those of each reference are indexed: its
    rarest among the references, so that common 3-grams ("i think that") are seldom probed.
    """
    ref_size = np.diff(ref_off)
    owner = np.repeat(np.arange(len(ref_size), dtype=np.int64), ref_size)
    _, inverse, counts = np.unique(ref_h, return_inverse=True, return_counts=True)
    frequency = counts[inverse.reshape(-1)]
    order = np.lexsort((ref_h, frequency, owner))  # by reference, rarest first
    rank = np.arange(len(order), dtype=np.int64) - ref_off[owner[order]]
    # floor(): never above the least whole number of shingles that reaches the threshold, so
    # the prefix is never too short for the float comparison made on the counts.
    needed = np.maximum(1, np.floor(threshold * ref_size).astype(np.int64))
    prefix = np.where(ref_size >= MIN_CONTAINMENT_SHINGLES, ref_size - needed + 1, 0)
    kept = order[rank < prefix[owner[order]]]
    by_hash = np.argsort(ref_h[kept], kind="stable")
    index_h, index_ref = ref_h[kept][by_hash], owner[kept][by_hash]
    recs: list[Ints] = []
    refs: list[Ints] = []
    for start in range(0, len(rec_h), _BATCH):
        probe = rec_h[start : start + _BATCH]
        rec_owner = np.searchsorted(rec_off, np.arange(start, start + len(probe)), "right") - 1
        low = np.searchsorted(index_h, probe, side="left")
        hits = np.searchsorted(index_h, probe, side="right") - low
        rows = _ranges(low, hits)
        rec, ref = _unique_pairs(np.repeat(rec_owner, hits), index_ref[rows], len(ref_size))
        recs.append(rec)
        refs.append(ref)
    if not recs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # a record cut by the batches would otherwise give its pairs twice
    return _unique_pairs(np.concatenate(recs), np.concatenate(refs), len(ref_size))


def shared_shingles(
    rec: Ints,
    ref: Ints,
    rec_h: npt.NDArray[np.uint32],
    rec_off: Ints,
    ref_h: npt.NDArray[np.uint32],
    ref_off: Ints,
) -> Ints:
    """|S(rec[i]) & S(ref[i])| for every pair, counted."""
    # Every reference's (reference, hash) as one 64-bit key: shingle_sets gives them sorted.
    ref_owner = np.repeat(np.arange(len(ref_off) - 1, dtype=np.uint64), np.diff(ref_off))
    ref_keys = (ref_owner << np.uint64(32)) | ref_h.astype(np.uint64)
    out = np.zeros(len(rec), dtype=np.int64)
    if not len(ref_keys):
        return out
    rec_size = np.diff(rec_off)[rec]
    start = 0
    while start < len(rec):
        # pairs whose record shingles fill about one batch (at least one pair)
        stop = max(start + 1, int(np.searchsorted(np.cumsum(rec_size[start:]), _BATCH)) + start)
        sizes = rec_size[start:stop]
        rows = _ranges(rec_off[rec[start:stop]], sizes)
        keys = (np.repeat(ref[start:stop].astype(np.uint64), sizes) << np.uint64(32)) | rec_h[
            rows
        ].astype(np.uint64)
        at = np.minimum(np.searchsorted(ref_keys, keys), len(ref_keys) - 1)
        pair = np.repeat(np.arange(stop - start), sizes)
        out[start:stop] = np.bincount(pair[ref_keys[at] == keys], minlength=stop - start)
        start = stop
    return out


def _ranges(starts: Ints, lengths: Ints) -> Ints:
    """starts[0], starts[0]+1, ... (lengths[0] of them), starts[1], ...: concatenated ranges."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return shift + np.arange(total, dtype=np.int64)


def _unique_pairs(rec: Ints, ref: Ints, n_refs: int) -> tuple[Ints, Ints]:
    """The distinct (record, reference) pairs, by record then reference."""
    keys = np.unique(rec * max(n_refs, 1) + ref)
    return keys // max(n_refs, 1), keys % max(n_refs, 1)


def _best_per_record(
    rec: Ints, ref: Ints, score: npt.NDArray[np.float64]
) -> dict[int, tuple[int, float]]:
    """record -> (reference with the highest score, the lowest on ties; its score)."""
    if not len(rec):
        return {}
    order = np.lexsort((ref, -score, rec))
    first = order[np.concatenate(([True], rec[order][1:] != rec[order][:-1]))]
    return {
        int(i): (int(r), float(v))
        for i, r, v in zip(
            rec[first].tolist(), ref[first].tolist(), score[first].tolist(), strict=True
        )
    }


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
    containment_threshold: float = DEFAULT_CONTAINMENT_THRESHOLD,
    embedding_threshold: float | None = DEFAULT_EMBEDDING_THRESHOLD,
    vectors: Vectors | None = None,
    ref_vectors: Vectors | None = None,
    readable: Mask | None = None,
    reference_readable: Mask | None = None,
) -> tuple[list[LeakageMatch], npt.NDArray[np.float32] | None]:
    """(leaking records, best reference cosine of each record compared by embedding, or None
    where none was).

    ``readable`` and ``reference_readable`` (``Embedder.readable`` of ``texts`` and
    ``references``; None: all) mark the texts the model can read; the others get no cosine:
    they neither match nor are matched by embedding (the n-gram checks still see them).
    """
    checked_texts(texts, "texts")
    checked_texts(references, "references")
    by_ngram = ngram_overlaps(
        texts, references, threshold=ngram_threshold, containment_threshold=containment_threshold
    )
    best_sim: npt.NDArray[np.float32] | None = None
    best_idx: npt.NDArray[np.int64] | None = None
    compared = np.zeros(len(texts), dtype=np.bool_)
    if embedding_threshold is not None and vectors is not None and ref_vectors is not None:
        read_refs = np.flatnonzero(_all_or(reference_readable, len(ref_vectors)))
        if len(read_refs):
            compared = _all_or(readable, len(vectors))
            best_idx, best_sim = nearest_reference(vectors, ref_vectors[read_refs])
            best_idx = read_refs[best_idx]
    matches: list[LeakageMatch] = []
    for i in range(len(texts)):
        gram = by_ngram.get(i)
        cos = float(best_sim[i]) if best_sim is not None and compared[i] else None
        # The reference shown is the one that made the record leak: Jaccard, containment, cosine.
        if gram is not None and gram.jaccard >= ngram_threshold:
            ref = gram.jaccard_reference
        elif (
            gram is not None
            and gram.containment is not None
            and (gram.containment >= containment_threshold)
        ):
            ref = gram.containment_reference or 0
        elif cos is not None and embedding_threshold is not None and cos >= embedding_threshold:
            ref = int(best_idx[i]) if best_idx is not None else 0
        else:
            continue
        matches.append(
            LeakageMatch(
                index=i,
                reference_index=ref,
                ngram_jaccard=gram.jaccard if gram else None,
                containment=gram.containment if gram else None,
                cosine=cos,
            )
        )
    return matches, best_sim[compared] if best_sim is not None and compared.any() else None


def _all_or(mask: Mask | None, size: int) -> Mask:
    return np.ones(size, dtype=np.bool_) if mask is None else np.asarray(mask, dtype=np.bool_)
