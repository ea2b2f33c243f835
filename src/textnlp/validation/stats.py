"""Small statistics for the report: distributions, histograms, field statistics."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from textnlp.validation.models import Distribution, FieldStats, Histogram
from textnlp.validation.pii import mask_pii

MAX_CATEGORIES = 50

#: A column of numbers: a list, an ``array.array`` or a NumPy array.
Numbers = Sequence[float] | npt.NDArray[Any]


def mean_or_none(values: Numbers) -> float | None:
    return float(np.mean(values)) if len(values) else None


def histogram(
    values: Numbers, *, bins: int = 30, low: float | None = None, high: float | None = None
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


def distribution(values: Numbers) -> Distribution:
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
        histogram=histogram(arr),
    )


def field_stats(items: Iterable[Mapping[str, Any]]) -> list[FieldStats]:
    """Per-field statistics: value counts of categorical fields, numeric summaries, text lengths."""
    tally = FieldTally()
    for item in items:
        tally.add(item)
    return tally.stats()


class FieldTally:
    """``field_stats`` of mappings given one at a time, keeping what the statistics need only:
    a field's value counts while it may still be categorical (at most ``MAX_CATEGORIES`` + 1
    values), its numbers while all its values are numbers, and the length of its texts."""

    def __init__(self) -> None:
        self._fields: dict[str, _Field] = {}  # in order of first appearance

    def add(self, item: Mapping[str, Any]) -> None:
        for name, value in item.items():
            field = self._fields.get(name)
            if field is None:
                field = self._fields[name] = _Field()
            if value is not None:
                field.add(value)

    def stats(self) -> list[FieldStats]:
        return [s for name, field in self._fields.items() if (s := field.stats(name)) is not None]


class _Field:
    def __init__(self) -> None:
        self.present = 0
        self.scalars = 0
        self.length = 0  # of the scalars' texts, for a text field's mean length
        self.counts: Counter[str] | None = Counter()  # None: more values than a category has
        self.numbers: array[float] | None = array("d")  # None: a value that is no number

    def add(self, value: Any) -> None:
        self.present += 1
        if not isinstance(value, str | int | float | bool):
            return
        self.scalars += 1
        text = str(value)
        self.length += len(text)
        if self.counts is not None:
            self.counts[text] += 1
            if len(self.counts) > MAX_CATEGORIES:
                self.counts = None
        if self.numbers is not None:
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.numbers.append(float(value))
            else:
                self.numbers = None

    def stats(self, name: str) -> FieldStats | None:
        if not self.scalars:
            return None
        if self.counts is not None:
            return FieldStats(
                name=name,
                kind="categorical",
                present=self.present,
                distribution=_masked(self.counts),
            )
        if self.numbers is not None:
            return FieldStats(
                name=name, kind="numeric", present=self.present, numeric=distribution(self.numbers)
            )
        return FieldStats(
            name=name, kind="text", present=self.present, mean_length=self.length / self.scalars
        )


def _masked(counts: Counter[str]) -> dict[str, int]:
    """A categorical field's counts as the report may show them: an email or a phone number
    as a value (a dataset's ``contact`` column) is masked, and values alike once masked merge."""
    masked: Counter[str] = Counter()
    for value, count in counts.items():
        masked[mask_pii(value)] += count
    return dict(sorted(masked.items()))
