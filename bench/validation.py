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

    python bench/validation.py [--sizes 100000 200000] [--embed 5000] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

NUM_PERM = 128
SEED = 1


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


def near_duplicates(sizes: list[int], threshold: float) -> list[dict[str, Any]]:
    import datasketch  # noqa: F401  - import cost outside the timings

    results = []
    for n in sizes:
        texts, pairs = make_records(n)
        t_ours, cluster_of = textnlp_path(texts, threshold)
        t_plain, found = plain_datasketch(texts, threshold)

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
        results.append(
            {
                "records": n,
                "planted_pairs": len(pairs),
                "textnlp_s": round(t_ours, 3),
                "textnlp_recall": _recall(pairs, ours),
                "datasketch_s": round(t_plain, 3),
                "datasketch_recall": _recall(pairs, plain),
                "recall_by_edit": by_kind,
                "ratio_textnlp_over_datasketch": round(t_ours / t_plain, 3),
            }
        )
        print(json.dumps({"progress": results[-1]}), flush=True)
    return results


def embeddings(n: int) -> dict[str, Any]:
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
    start = time.perf_counter()
    plain.encode(texts, batch_size=32, show_progress_bar=False)
    t_plain = time.perf_counter() - start
    start = time.perf_counter()
    ours.encode(texts)
    t_ours = time.perf_counter() - start
    return {
        "texts": n,
        "textnlp_texts_per_s": round(n / t_ours, 1),
        "sentence_transformers_texts_per_s": round(n / t_plain, 1),
        "ratio_textnlp_over_plain_throughput": round(t_plain / t_ours, 3),
    }


def _recall(pairs: list[tuple[int, int, str]], found: list[bool], kind: str | None = None) -> float:
    """The share of planted pairs (of one kind of edit, or all) that were found."""
    chosen = [hit for (*_, k), hit in zip(pairs, found, strict=True) if kind is None or k == kind]
    return round(sum(chosen) / len(chosen), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000])
    parser.add_argument("--embed", type=int, default=5000)
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    near = near_duplicates(args.sizes, args.threshold)
    out: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
        },
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
        out["embeddings"] = embeddings(args.embed)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
