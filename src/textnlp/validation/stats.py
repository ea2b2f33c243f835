"""Small statistics for the report: distributions, histograms, field statistics, worst examples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textnlp.validation.dedup import DuplicateGroups
from textnlp.validation.loader import DatasetRow
from textnlp.validation.models import Distribution, Example, FieldStats, Histogram
from textnlp.validation.pii import mask_pii
from textnlp.validation.quality import TextQuality
from textnlp.validation.text import preview

MAX_CATEGORIES = 50
WORST = 5


def mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def histogram(
    values: Sequence[float], *, bins: int = 30, low: float | None = None, high: float | None = None
) -> Histogram:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    lo = float(arr.min()) if low is None and len(arr) else (low if low is not None else 0.0)
    hi = float(arr.max()) if high is None and len(arr) else (high if high is not None else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    if (
        len(arr)
        and low is None
        and high is None
        and np.all(arr == np.round(arr))
        and hi - lo < bins
    ):
        # Small integer ranges (word counts of short texts): one bin per value.
        bins, lo, hi = int(hi - lo) + 1, lo - 0.5, hi + 0.5
    counts, edges = np.histogram(np.clip(arr, lo, hi), bins=bins, range=(lo, hi))
    return Histogram(edges=[round(float(e), 6) for e in edges], counts=[int(c) for c in counts])


def distribution(values: Sequence[float]) -> Distribution:
    arr = np.asarray(values, dtype=np.float64)
    if not len(arr):
        arr = np.zeros(1)
    p5, median, p95 = np.percentile(arr, [5, 50, 95])
    return Distribution(
        min=float(arr.min()),
        max=float(arr.max()),
        mean=float(arr.mean()),
        median=float(median),
        p5=float(p5),
        p95=float(p95),
        histogram=histogram(arr.tolist()),
    )


def field_stats(items: Sequence[Mapping[str, Any]]) -> list[FieldStats]:
    """Per-field statistics: value counts of categorical fields, numeric summaries, text lengths."""
    names: dict[str, None] = {}
    for item in items:
        names.update(dict.fromkeys(item))
    stats: list[FieldStats] = []
    for name in names:
        values = [item[name] for item in items if item.get(name) is not None]
        scalars = [v for v in values if isinstance(v, str | int | float | bool)]
        if not scalars:
            continue
        counts = Counter(str(v) for v in scalars)
        numeric = [
            float(v) for v in scalars if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if len(counts) <= MAX_CATEGORIES:
            stats.append(
                FieldStats(
                    name=name,
                    kind="categorical",
                    present=len(values),
                    distribution=_masked(counts),
                )
            )
        elif len(numeric) == len(scalars):
            stats.append(
                FieldStats(
                    name=name, kind="numeric", present=len(values), numeric=distribution(numeric)
                )
            )
        else:
            lengths = [len(str(v)) for v in scalars]
            stats.append(
                FieldStats(
                    name=name, kind="text", present=len(values), mean_length=float(np.mean(lengths))
                )
            )
    return stats


def _masked(counts: Counter[str]) -> dict[str, int]:
    """A categorical field's counts as the report may show them: an email or a phone number
    as a value (a dataset's ``contact`` column) is masked, and values alike once masked merge."""
    masked: Counter[str] = Counter()
    for value, count in counts.items():
        masked[mask_pii(value)] += count
    return dict(sorted(masked.items()))


def shown_text(quality: TextQuality, text: str) -> str:
    """``text`` as the report may show it: personal data masked (``[EMAIL]``) wherever it is."""
    return quality.masked_text if quality.masked_text is not None else mask_pii(text)


def examples_of(
    rows: Sequence[DatasetRow],
    qualities: Sequence[TextQuality],
    exact: DuplicateGroups,
    near: DuplicateGroups,
) -> dict[str, list[Example]]:
    """The worst few records of each problem, for people to look at (PII masked)."""
    texts = [shown_text(q, r.text) for r, q in zip(rows, qualities, strict=True)]
    out: dict[str, list[Example]] = {}

    def add(problem: str, picked: list[Example]) -> None:
        if picked:
            out[problem] = picked[:WORST]

    add(
        "empty",
        [
            Example(index=i, text="", detail="empty text")
            for i, q in enumerate(qualities)
            if q.empty
        ],
    )
    add(
        "truncated",
        [
            Example(index=i, text=preview(texts[i]), detail="finish_reason=length")
            for i, q in enumerate(qualities)
            if q.truncated
        ],
    )
    add(
        "invalid_json",
        [
            # A schema error quotes the value it refused, which may be personal data.
            Example(index=i, text=preview(texts[i]), detail=mask_pii(q.json_error or "invalid"))
            for i, q in enumerate(qualities)
            if q.json_valid is False
        ],
    )
    repetitive = sorted(range(len(qualities)), key=lambda i: -qualities[i].repeated_ngram_ratio)
    add(
        "repetition",
        [
            Example(
                index=i,
                text=preview(texts[i]),
                value=qualities[i].repeated_ngram_ratio,
                detail=f"longest repeated span {qualities[i].longest_repeated_span} words",
            )
            for i in repetitive[:WORST]
            if qualities[i].repeated_ngram_ratio > 0
        ],
    )
    add(
        "pii",
        [
            Example(
                index=i,
                text=preview(texts[i]),
                detail=", ".join(sorted({f.kind for f in q.pii})),
            )
            for i, q in enumerate(qualities)
            if q.pii
        ],
    )

    def groups(found: list[list[int]], what: str) -> list[Example]:
        """One example per group of duplicates: its first record, and the group's size."""
        return [
            Example(
                index=g[0],
                text=preview(texts[g[0]]),
                value=len(g),
                detail=f"{len(g)} {what}: {g[:10]}",
            )
            for g in found
        ]

    add("exact_duplicates", groups(exact.groups, "copies"))
    add("near_duplicates", groups(near.groups, "similar records"))
    return out
