"""Leakage benchmark: the exact containment step against the Jaccard (MinHash LSH) step.

N synthetic records and R references of about 50 words (a Zipf-like vocabulary of 20,000
words by default, so that some 3-grams are common; ``--vocabulary 2000`` makes many more), with
planted leaks: 1% of the records hold a whole reference inside a text 2.5x as long (containment
1.0, Jaccard about 0.4), 1% are a reference with one word in ten replaced. Times, in one run on
the same texts:

* Jaccard step: ``lsh_candidates`` (MinHash signatures of both sides, LSH filled with the
  references, one query per record): what the check did before containment.
* containment step: ``shingle_sets`` of both sides, the prefix index (``containment_candidates``)
  and the exact counts of the shared shingles of its pairs (``shared_shingles``).
* ``find_leakage`` end to end (no embeddings): both steps and the exact Jaccard of the LSH pairs.

Each step runs ``--rounds`` times on the same texts (the two steps alternate which goes
first); every time is the median with its rounds beside it, and ``noise`` is the larger of the
two steps' spreads (range over median; null with one round). Prints JSON; ``claims`` checks
what bench/RESULTS.md states of it, and the script exits 1 when one fails:

* ``every_whole_copy_found``: ``find_leakage`` finds every record holding a whole reference;
* ``no_whole_copy_by_jaccard_alone``: none of those reaches the Jaccard threshold (0.5), so
  the Jaccard step alone would miss them all;
* ``containment_step_cheaper``: the containment step took less time than the Jaccard step in
  every round (each round's ratio under 1: the rounds interleave the two, so a slow moment of
  the machine falls on both);
* ``pairs_per_record_at_most_2.5``: the prefix index's candidate pairs stay under 2.5 per
  record (prefix filtering keeps them few even with ``--vocabulary 2000``).

    python bench/leakage_containment.py [--records 100000] [--references 10000]
        [--vocabulary 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

import numpy as np  # noqa: E402

from bench.common import machine, spread, widest  # noqa: E402


def make_texts(
    n_records: int, n_refs: int, *, vocabulary: int = 20_000, seed: int = 0
) -> tuple[list[str], list[str], list[int], list[int]]:
    """(records, references, records holding a whole reference, records a reference edited)."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "xo", "bu"]
    vocab = np.array(
        [
            "".join(syllables[(i // 12**k) % 12] for k in range(1 + i % 3)) + str(i % 7)
            for i in range(vocabulary)
        ]
    )
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()

    def words(count: int, length: int) -> list[list[str]]:
        lengths = rng.integers(length - 10, length + 11, size=count)
        flat = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=weights)].tolist()
        out, at = [], 0
        for size in lengths.tolist():
            out.append(flat[at : at + size])
            at += size
        return out

    refs = words(n_refs, 50)
    records = words(n_records, 50)
    copied = list(range(0, n_records, 100))
    edited = list(range(50, n_records, 100))
    for i in copied:  # a whole reference inside a text 2.5x its length
        ref = refs[i % n_refs]
        pad = words(1, int(len(ref) * 0.75))[0]
        records[i] = pad + ref + words(1, int(len(ref) * 0.75))[0]
    for i in edited:  # one word in ten replaced
        ref = list(refs[(i * 7) % n_refs])
        for k in range(0, len(ref), 10):
            ref[k] = "zz" + str(k)
        records[i] = ref
    return [" ".join(r) for r in records], [" ".join(r) for r in refs], copied, edited


def timed_steps(texts: list[str], refs: list[str], first: str) -> dict[str, Any]:
    """One round of the two steps, ``first`` first: their times and what they found."""
    from textnlp.validation.leakage import (
        DEFAULT_CONTAINMENT_THRESHOLD,
        containment_candidates,
        lsh_candidates,
        shared_shingles,
    )
    from textnlp.validation.minhash import shingle_sets

    out: dict[str, Any] = {}
    for step in ("jaccard", "containment") if first == "jaccard" else ("containment", "jaccard"):
        t0 = time.perf_counter()
        if step == "jaccard":
            lsh_rec, _ = lsh_candidates(texts, refs)
            out["jaccard_s"] = time.perf_counter() - t0
            out["jaccard_pairs"] = len(lsh_rec)
            continue
        rec_h, rec_off = shingle_sets(texts)
        ref_h, ref_off = shingle_sets(refs)
        out["shingle_sets_s"] = time.perf_counter() - t0
        rec, ref = containment_candidates(
            rec_h, rec_off, ref_h, ref_off, DEFAULT_CONTAINMENT_THRESHOLD
        )
        shared = shared_shingles(rec, ref, rec_h, rec_off, ref_h, ref_off)
        out["containment_s"] = time.perf_counter() - t0
        out["containment_pairs"] = len(rec)
        hit = shared / np.diff(ref_off)[ref] >= DEFAULT_CONTAINMENT_THRESHOLD
        out["containment_pairs_at_threshold"] = int(hit.sum())
    return out


def figure(values: list[float]) -> dict[str, Any]:
    """A time's median, its rounds and their spread."""
    return {
        "median_s": round(statistics.median(values), 3),
        "rounds_s": [round(v, 3) for v in values],
        "spread": spread(values),
    }


def claims(
    found: dict[str, Any], ratio: float, ratio_rounds: list[float], noise: float | None
) -> dict[str, Any]:
    """Each claim bench/RESULTS.md makes of this benchmark, judged on this run's figures."""
    copied = found["copied"]
    checks = {
        "every_whole_copy_found": {
            "value": f"{found['copied_found']}/{copied}",
            "ok": found["copied_found"] == copied,
        },
        "no_whole_copy_by_jaccard_alone": {
            "value": found["copied_by_jaccard"],
            "ok": found["copied_by_jaccard"] == 0,
        },
        "containment_step_cheaper": {
            "value": ratio,
            "rounds": ratio_rounds,
            "noise": noise,
            "ok": all(r < 1 for r in ratio_rounds),
        },
        "pairs_per_record_at_most_2.5": {
            "value": found["pairs_per_record"],
            "ok": found["pairs_per_record"] <= 2.5,
        },
    }
    return {**checks, "ok": all(check["ok"] for check in checks.values())}


def main() -> None:
    from textnlp.validation.leakage import find_leakage

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--references", type=int, default=10_000)
    parser.add_argument("--vocabulary", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="2 or more for the noise")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    t0 = time.perf_counter()
    texts, refs, copied, edited = make_texts(
        args.records, args.references, vocabulary=args.vocabulary
    )
    made_s = time.perf_counter() - t0

    find_leakage(texts[:200], refs[:50], embedding_threshold=None)  # imports, caches: warm
    steps = [
        timed_steps(texts, refs, "jaccard" if round_ % 2 == 0 else "containment")
        for round_ in range(args.rounds)
    ]
    totals: list[float] = []
    matches: list[Any] = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        matches, _ = find_leakage(texts, refs, embedding_threshold=None)
        totals.append(time.perf_counter() - t0)
    jaccard = [s["jaccard_s"] for s in steps]
    containment = [s["containment_s"] for s in steps]
    ratio = round(statistics.median(containment) / statistics.median(jaccard), 3)
    ratio_rounds = [round(c / j, 3) for c, j in zip(containment, jaccard, strict=True)]
    noise = widest(spread(jaccard), spread(containment))
    by_index = {m.index: m for m in matches}  # the same texts: the same matches every round
    last = steps[-1]
    found = {
        "copied": len(copied),
        "copied_found": sum(1 for i in copied if i in by_index),
        "copied_by_jaccard": sum(
            1 for i in copied if (by_index.get(i) and by_index[i].ngram_jaccard or 0) >= 0.5
        ),
        "edited": len(edited),
        "edited_found": sum(1 for i in edited if i in by_index),
        "leaked": len(matches),
        "pairs_per_record": round(last["containment_pairs"] / len(texts), 3),
    }
    out = {
        "machine": machine(),
        "records": len(texts),
        "references": len(refs),
        "words_per_reference": round(float(np.mean([len(t.split()) for t in refs])), 1),
        "vocabulary": args.vocabulary,
        "made_s": round(made_s, 1),
        "rounds": args.rounds,
        "jaccard_step": {**figure(jaccard), "pairs": last["jaccard_pairs"]},
        "containment_step": {
            **figure(containment),
            "shingle_sets_median_s": round(
                statistics.median(s["shingle_sets_s"] for s in steps), 3
            ),
            "pairs": last["containment_pairs"],
            "pairs_at_threshold": last["containment_pairs_at_threshold"],
        },
        "ratio_containment_over_jaccard": ratio,
        "ratio_rounds": ratio_rounds,
        "noise": noise,
        "find_leakage": {
            **figure(totals),
            "over_jaccard_step": round(statistics.median(totals) / statistics.median(jaccard), 3),
        },
        "found": found,
        "claims": claims(found, ratio, ratio_rounds, noise),
    }
    print(json.dumps(out, indent=2))
    if not out["claims"]["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
