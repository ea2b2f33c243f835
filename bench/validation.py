"""Validation benchmarks: near-duplicate detection and embedding throughput.

(a) Near duplicates on N synthetic records (default 100k and 200k) with planted near copies
    (one word replaced, one word dropped, or case/punctuation changed, in 60-100-word texts):
    ``textnlp.validation.find_near_duplicates`` (the path ``validate_dataset`` uses) against,
    in the same run and on the same records, a plain datasketch pipeline: word 3-shingles of
    ``text.lower().split()``, ``MinHash.bulk``, ``MinHashLSH`` (same permutations: num_perm,
    seed; same threshold) filled with ``insertion_session`` and queried once per record.
    Recall = planted pairs found (same cluster / returned by the query), in all and per kind of
    edit. A third of the planted pairs differ only in case and punctuation, which TextNLP folds
    before MinHash (its shingles are of normalised words) and the baseline only partly
    (``lower()``); the per-kind recalls show whether that third flatters either side.
(b) Embeddings of the same 5k texts: ``Embedder.encode`` against plain
    ``SentenceTransformer.encode`` on the same model directory.

Every figure is the median of ``--rounds`` rounds (the two sides alternate which goes first),
with the rounds beside it and ``noise``: the larger of the two sides' spreads (range over
median; null with one round). ``targets`` checks what bench/RESULTS.md states of this script:
TextNLP / datasketch at the first size <= 1.5x, TextNLP's time from the first size to the last
(twice as many records by default) <= 2.2x, TextNLP's recall at least datasketch's at every
size, and embeddings >= 0.9x plain SentenceTransformer's throughput. The script exits 1 when a
target is missed.

    python bench/validation.py [--sizes 100000 200000] [--embed 5000] [--threshold 0.8]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import machine, spread, widest  # noqa: E402

NUM_PERM = 128
SEED = 1
#: What bench/RESULTS.md states of this script's figures.
TARGETS = {
    "ratio_at_first_size_max": 1.5,
    "textnlp_scaling_last_over_first_max": 2.2,
    "embeddings_throughput_ratio_min": 0.9,
}


#: The kinds of planted edit, in the order ``make_records`` cycles through them.
EDITS = ("word_replaced", "word_dropped", "case_punctuation")


def make_records(
    n: int, *, dup_share: float = 0.05, seed: int = 0
) -> tuple[list[str], list[tuple[int, int, str]]]:
    """``n`` texts, ``dup_share`` of them near copies of another; returns (texts, planted
    pairs with the kind of edit)."""
    rng = random.Random(seed)
    syllables = [
        "ka",
        "lo",
        "mi",
        "ne",
        "tu",
        "ra",
        "si",
        "po",
        "de",
        "va",
        "gu",
        "he",
        "zo",
        "bi",
        "fe",
    ]
    vocab = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(30000)})
    weights = [1.0 / (rank + 10) for rank in range(len(vocab))]  # Zipf-like word frequencies
    n_dups = int(n * dup_share)
    texts: list[str] = []
    base_count = n - n_dups
    for _ in range(base_count):
        texts.append(" ".join(rng.choices(vocab, weights=weights, k=rng.randint(60, 100))) + ".")
    pairs: list[tuple[int, int, str]] = []
    for k in range(n_dups):
        src = rng.randrange(base_count)
        words = texts[src].split()
        edit = k % 3
        if edit == 0:
            words[rng.randrange(len(words))] = rng.choice(vocab)
        elif edit == 1:
            del words[rng.randrange(len(words))]
        else:
            words[0] = words[0].capitalize()
            words[-1] = words[-1].rstrip(".") + "!"
        pairs.append((src, len(texts), EDITS[edit]))
        texts.append(" ".join(words))
    order = list(range(n))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    shuffled = [texts[old] for old in order]
    return shuffled, [(position[a], position[b], kind) for a, b, kind in pairs]


def plain_datasketch(texts: list[str], threshold: float) -> tuple[float, set[tuple[int, int]]]:
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    shingles = []
    for text in texts:
        w = text.lower().split()
        shingles.append([" ".join(w[i : i + 3]).encode("utf-8") for i in range(max(1, len(w) - 2))])
    sketches = MinHash.bulk(shingles, num_perm=NUM_PERM, seed=SEED)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for i, sketch in enumerate(sketches):
            session.insert(i, sketch, check_duplication=False)
    found: set[tuple[int, int]] = set()
    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            if j != i:
                found.add((min(i, j), max(i, j)))
    return time.perf_counter() - start, found


def textnlp_path(texts: list[str], threshold: float) -> tuple[float, dict[int, int]]:
    from textnlp.validation import find_near_duplicates

    start = time.perf_counter()
    result = find_near_duplicates(texts, threshold=threshold, num_perm=NUM_PERM, seed=SEED)
    elapsed = time.perf_counter() - start
    cluster_of = {i: c for c, group in enumerate(result.groups) for i in group}
    return elapsed, cluster_of


def near_duplicates(sizes: list[int], threshold: float, rounds: int) -> list[dict[str, Any]]:
    import datasketch  # noqa: F401  - import cost outside the timings

    results = []
    for n in sizes:
        texts, pairs = make_records(n)
        ours_s: list[float] = []
        plain_s: list[float] = []
        for round_ in range(rounds):  # alternate who goes first: drift falls on both sides
            for side in ("textnlp", "datasketch")[:: 1 if round_ % 2 == 0 else -1]:
                if side == "textnlp":
                    elapsed, cluster_of = textnlp_path(texts, threshold)
                    ours_s.append(elapsed)
                else:
                    elapsed, found = plain_datasketch(texts, threshold)
                    plain_s.append(elapsed)

        # The same texts and seeds every round: the pairs found are the same each time.
        ours = [a in cluster_of and cluster_of.get(a) == cluster_of.get(b) for a, b, _ in pairs]
        plain = [(min(a, b), max(a, b)) in found for a, b, _ in pairs]
        by_kind = {
            kind: {
                "pairs": sum(1 for *_, k in pairs if k == kind),
                "textnlp_recall": _recall(pairs, ours, kind),
                "datasketch_recall": _recall(pairs, plain, kind),
            }
            for kind in EDITS
        }
        t_ours, t_plain = statistics.median(ours_s), statistics.median(plain_s)
        results.append(
            {
                "records": n,
                "planted_pairs": len(pairs),
                "textnlp_s": round(t_ours, 3),
                "textnlp_rounds": [round(t, 3) for t in ours_s],
                "textnlp_recall": _recall(pairs, ours),
                "datasketch_s": round(t_plain, 3),
                "datasketch_rounds": [round(t, 3) for t in plain_s],
                "datasketch_recall": _recall(pairs, plain),
                "recall_by_edit": by_kind,
                "ratio_textnlp_over_datasketch": round(t_ours / t_plain, 3),
                "noise": widest(spread(ours_s), spread(plain_s)),
            }
        )
        print(json.dumps({"progress": results[-1]}), flush=True)
    return results


def embeddings(n: int, rounds: int) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from textnlp.validation import Embedder
    from textnlp.validation.embedding import default_model_path

    rng = random.Random(1)
    words = [
        "the",
        "a",
        "quick",
        "product",
        "works",
        "well",
        "great",
        "battery",
        "sound",
        "quality",
        "price",
        "delivery",
        "box",
        "coffee",
        "grinder",
        "tent",
        "rain",
        "night",
        "camping",
        "book",
        "story",
        "plot",
        "ending",
        "cream",
        "skin",
        "dry",
        "love",
        "hate",
        "return",
        "refund",
        "would",
        "buy",
        "again",
        "never",
        "recommend",
        "friend",
        "daily",
        "use",
        "easy",
    ]
    texts = [" ".join(rng.choices(words, k=rng.randint(10, 40))) for _ in range(n)]
    plain = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    ours = Embedder(device="cpu").load()
    plain.encode(texts[:64])
    ours.encode(texts[:64])
    rates: dict[str, list[float]] = {"textnlp": [], "plain": []}
    encode = {
        "plain": lambda: plain.encode(texts, batch_size=32, show_progress_bar=False),
        "textnlp": lambda: ours.encode(texts),
    }
    for round_ in range(rounds):  # alternate who goes first
        for side in ("plain", "textnlp")[:: 1 if round_ % 2 == 0 else -1]:
            start = time.perf_counter()
            encode[side]()
            rates[side].append(n / (time.perf_counter() - start))
    ours_rate, plain_rate = (statistics.median(rates[side]) for side in ("textnlp", "plain"))
    return {
        "texts": n,
        "textnlp_texts_per_s": round(ours_rate, 1),
        "textnlp_rounds": [round(r, 1) for r in rates["textnlp"]],
        "sentence_transformers_texts_per_s": round(plain_rate, 1),
        "sentence_transformers_rounds": [round(r, 1) for r in rates["plain"]],
        "ratio_textnlp_over_plain_throughput": round(ours_rate / plain_rate, 3),
        "noise": widest(spread(rates["textnlp"]), spread(rates["plain"])),
    }


def _recall(pairs: list[tuple[int, int, str]], found: list[bool], kind: str | None = None) -> float:
    """The share of planted pairs (of one kind of edit, or all) that were found."""
    chosen = [hit for (*_, k), hit in zip(pairs, found, strict=True) if kind is None or k == kind]
    return round(sum(chosen) / len(chosen), 4)


def verdicts(near: list[dict[str, Any]], embedded: dict[str, Any] | None) -> dict[str, Any]:
    """Each target RESULTS.md states, judged on the medians, with the noise beside it."""
    checks: dict[str, Any] = {}
    if near:
        first = near[0]
        value = first["ratio_textnlp_over_datasketch"]
        limit = TARGETS["ratio_at_first_size_max"]
        checks[f"ratio_at_{first['records']}_le_{limit}"] = {
            "value": value, "noise": first["noise"], "ok": value <= limit,
        }  # fmt: skip
        checks["textnlp_recall_ge_datasketch"] = {
            "value": [[r["textnlp_recall"], r["datasketch_recall"]] for r in near],
            "ok": all(r["textnlp_recall"] >= r["datasketch_recall"] for r in near),
        }
    if len(near) >= 2:
        value = round(near[-1]["textnlp_s"] / near[0]["textnlp_s"], 3)
        limit = TARGETS["textnlp_scaling_last_over_first_max"]
        checks[f"textnlp_scaling_le_{limit}"] = {
            "value": value,
            "records": [near[0]["records"], near[-1]["records"]],
            "noise": widest(spread(near[0]["textnlp_rounds"]), spread(near[-1]["textnlp_rounds"])),
            "ok": value <= limit,
        }
    if embedded is not None:
        value = embedded["ratio_textnlp_over_plain_throughput"]
        limit = TARGETS["embeddings_throughput_ratio_min"]
        checks[f"embeddings_ratio_ge_{limit}"] = {
            "value": value, "noise": embedded["noise"], "ok": value >= limit,
        }  # fmt: skip
    return {**checks, "ok": all(check["ok"] for check in checks.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000])
    parser.add_argument("--embed", type=int, default=5000)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--rounds", type=int, default=3, help="per figure; 2 or more for noise")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    near = near_duplicates(args.sizes, args.threshold, args.rounds)
    out: dict[str, Any] = {
        "machine": machine(),
        "rounds": args.rounds,
        "near_duplicates": {"threshold": args.threshold, "num_perm": NUM_PERM, "runs": near},
    }
    if len(near) >= 2:
        out["near_duplicates"]["scaling_textnlp_last_over_first"] = round(
            near[-1]["textnlp_s"] / near[0]["textnlp_s"], 3
        )
        out["near_duplicates"]["scaling_datasketch_last_over_first"] = round(
            near[-1]["datasketch_s"] / near[0]["datasketch_s"], 3
        )
    if args.embed:
        out["embeddings"] = embeddings(args.embed, args.rounds)
    out["targets"] = verdicts(near, out.get("embeddings"))
    print(json.dumps(out, indent=2))
    if not out["targets"]["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
