"""Near-duplicate candidates from sorted signature bands are datasketch's LSH buckets' pairs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.unit.validation.report_datasets import cluster_records, review_records
from textnlp.validation.dedup import (
    _MAX_BUCKET_PAIRS,
    _candidate_pairs,
    _roots,
    _union_find,
    new_lsh,
)
from textnlp.validation.minhash import DEFAULT_NUM_PERM, DEFAULT_SEED, Signatures, signatures


def _datasketch_pairs(
    sigs: Signatures, keys: list[int], threshold: float
) -> tuple[list[tuple[int, int]], int]:
    """(candidate pairs, largest bucket) as a filled ``datasketch.MinHashLSH`` gives them."""
    from datasketch import LeanMinHash

    lsh = new_lsh(threshold, DEFAULT_NUM_PERM)
    with lsh.insertion_session() as session:
        for key in keys:
            sketch = LeanMinHash(seed=DEFAULT_SEED, hashvalues=sigs[key], scheme="affine32")
            session.insert(key, sketch, check_duplication=False)
    pairs: set[tuple[int, int]] = set()
    largest = 0
    for table in lsh.hashtables:
        for bucket in list(table.keys()):
            members = sorted(table.get(bucket))
            largest = max(largest, len(members))
            if len(members) <= _MAX_BUCKET_PAIRS:
                pairs.update((a, b) for i, a in enumerate(members) for b in members[i + 1 :])
            else:
                pairs.update((members[0], b) for b in members[1:])
    return sorted(pairs), largest


def _texts() -> list[str]:
    texts = cluster_records(400, seed=11)  # a third are near copies of one text
    texts += [r["text"] for r in review_records(600, seed=11)]
    random.Random(11).shuffle(texts)
    return texts


@pytest.mark.parametrize("threshold", [0.3, 0.8, 0.995])
def test_band_sorting_finds_the_pairs_of_datasketchs_buckets(threshold: float) -> None:
    sigs, has_words = signatures(_texts())
    keys = np.flatnonzero(has_words)
    expected, largest = _datasketch_pairs(sigs, keys.tolist(), threshold)
    lsh = new_lsh(threshold, DEFAULT_NUM_PERM)
    left, right = _candidate_pairs(sigs, keys, lsh.b, lsh.r)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == expected
    assert len(expected) > 100
    if threshold < 0.99:
        assert largest > _MAX_BUCKET_PAIRS  # the star of a large bucket is exercised too


def test_no_keys_no_pairs() -> None:
    sigs, _ = signatures(["one two three"])
    left, right = _candidate_pairs(sigs, np.empty(0, dtype=np.int64), 4, 32)
    assert left.tolist() == right.tolist() == []


def test_roots_over_the_paired_elements_only_are_the_full_union_finds() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    left = rng.integers(0, n, 300)
    right = rng.integers(0, n, 300)
    left, right = np.minimum(left, right), np.maximum(left, right)
    assert _roots(n, left, right).tolist() == _union_find(n, left, right).tolist()
    assert _roots(5, left[:0], right[:0]).tolist() == [0, 1, 2, 3, 4]
