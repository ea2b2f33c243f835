"""The dataset report (JSON via ``model_dump_json``) and its parts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from textnlp.validation.gate import GateResult, RuleStatus


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeakageMatch(_Model):
    """A generated record too close to a reference (``leakage.find_leakage``)."""

    index: int
    reference_index: int
    #: Jaccard similarity of word 3-gram sets, 0-1, exact, the highest over the references the
    #: n-gram indexes compared the record with (None: none compared).
    ngram_jaccard: float | None
    #: Share of a reference's word 3-grams found in the record, 0-1, exact, the highest over the
    #: references of at least ``leakage.MIN_CONTAINMENT_SHINGLES`` 3-grams compared (None: none).
    containment: float | None = None
    #: Cosine of the MiniLM embeddings, -1..1 (None without embeddings).
    cosine: float | None


class Histogram(_Model):
    edges: list[float]
    counts: list[int]


class Distribution(_Model):
    """Summary of a numeric column: min, max, mean, median, 5th/95th percentiles, histogram."""

    min: float
    max: float
    mean: float
    median: float
    p5: float
    p95: float
    histogram: Histogram


class Example(_Model):
    """One record illustrating a problem: where it is, a preview and why it is listed."""

    index: int
    text: str
    detail: str
    value: float | None = None


class DuplicateCluster(_Model):
    size: int
    indices: list[int]
    text: str


class DuplicateSummary(_Model):
    clusters: int
    records: int
    redundant: int
    rate: float
    top: list[DuplicateCluster]


class NearDuplicateSummary(DuplicateSummary):
    threshold: float
    num_perm: int
    bands: int
    rows: int
    pair_similarity: Histogram | None = None


class QualitySummary(_Model):
    empty: int
    empty_rate: float
    #: None when the dataset carries no finish_reason; the rate is over the records with one.
    truncated: int | None
    truncated_rate: float | None
    #: None when no JSON output is expected.
    json_invalid: int | None
    json_invalid_rate: float | None
    #: Records holding U+FFFD, where bytes that were not UTF-8 were replaced (a model's broken
    #: output); None in a report stored before they were counted.
    replacement_char: int | None = None
    replacement_char_rate: float | None = None
    mean_repeated_ngram_ratio: float
    mean_distinct_2: float | None
    #: On the readability/language sample.
    sample_size: int
    mean_flesch_reading_ease: float | None
    mean_flesch_kincaid_grade: float | None
    languages: dict[str, int]


class PIISummary(_Model):
    records: int
    rate: float
    by_kind: dict[str, int]


class DiversitySummary(_Model):
    sample_size: int
    distinct_1: float | None
    distinct_2: float | None
    distinct_3: float | None
    #: Mean pairwise cosine distance of MiniLM embeddings on the sample; None without embeddings.
    semantic: float | None = None
    semantic_clusters: int | None = None
    cluster_threshold: float | None = None
    nearest_neighbour_similarity: Histogram | None = None
    #: Records of the sample the embedding model cannot read (``Embedder.readable``: mostly
    #: ``[UNK]``), left out of the semantic figures above; None without embeddings.
    embedding_unreadable: int | None = None


class LeakageSummary(_Model):
    reference: str
    reference_count: int
    ngram_threshold: float
    #: None in a report stored before containment was checked (a job's report is read back).
    containment_threshold: float | None = None
    embedding_threshold: float | None
    #: Records and references the embedding model cannot read, never compared by embedding
    #: (None without embeddings).
    embedding_unreadable: int | None = None
    reference_embedding_unreadable: int | None = None
    leaked: int
    rate: float
    matches: list[LeakageMatch]
    reference_similarity: Histogram | None = None


class FieldStats(_Model):
    """Statistics of one label or JSON field."""

    name: str
    kind: Literal["categorical", "numeric", "text"]
    present: int
    distribution: dict[str, int] | None = None
    numeric: Distribution | None = None
    mean_length: float | None = None


class DatasetReport(_Model):
    source: str
    field: str
    count: int
    words: Distribution
    tokens: Distribution
    chars: Distribution
    quality: QualitySummary
    exact_duplicates: DuplicateSummary
    near_duplicates: NearDuplicateSummary
    pii: PIISummary
    diversity: DiversitySummary
    leakage: LeakageSummary | None = None
    labels: list[FieldStats]
    fields: list[FieldStats]
    examples: dict[str, list[Example]]
    gate: GateResult
    json_schema: dict[str, Any] | None = None
    #: How a recipe run made the dataset, where known (``generate --validate``): candidates,
    #: rejections and pass rate per filter, acceptance rate (``recipes.run.Acceptance``).
    generation: dict[str, Any] | None = None
    #: The records the generation was asked for, where known (a run's, a job's): those not in
    #: the dataset failed (a failed record is in no dataset file).
    requested: int | None = None

    @property
    def passed(self) -> bool:
        return self.gate.passed

    def metrics(self) -> dict[str, float | None]:
        """The figures release-gate rules refer to."""
        return report_metrics(self)

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(metric, value, status) for a summary table; status is pass/fail/skipped or ""."""
        status = {r.metric: r.status for r in self.gate.rules}
        rows: list[tuple[str, str, str]] = []
        for metric, value in self.metrics().items():
            rows.append((metric, _fmt(metric, value), status.get(metric, "")))
        rows.append(
            ("gate", "passed" if self.passed else "FAILED", "pass" if self.passed else "fail")
        )
        return rows


def report_metrics(report: DatasetReport) -> dict[str, float | None]:
    q, d = report.quality, report.diversity
    return {
        "count": float(report.count),
        "missing_rate": (
            max(0, report.requested - report.count) / report.requested if report.requested else None
        ),
        "mean_words": report.words.mean,
        "empty_rate": q.empty_rate,
        "truncated_rate": q.truncated_rate,
        "json_invalid_rate": q.json_invalid_rate,
        "replacement_char_rate": q.replacement_char_rate,
        "exact_duplicate_rate": report.exact_duplicates.rate,
        "near_duplicate_rate": report.near_duplicates.rate,
        "pii_rate": report.pii.rate,
        "mean_repeated_ngram_ratio": q.mean_repeated_ngram_ratio,
        "lexical_diversity": report.diversity.distinct_2,
        "semantic_diversity": report.diversity.semantic,
        "embedding_unreadable_rate": (
            d.embedding_unreadable / d.sample_size
            if d.embedding_unreadable is not None and d.sample_size
            else None
        ),
        "leakage_rate": report.leakage.rate if report.leakage else None,
    }


#: Metrics that count records, shown as whole numbers; every other figure has 4 decimals (a
#: rate of 1 shown as "1" beside "0.5000" reads as another kind of figure).
_COUNTS = {"count"}


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric in _COUNTS:
        return str(int(value))
    return f"{value:.4f}"


STATUS_STYLES: dict[RuleStatus | str, str] = {"pass": "green", "fail": "red", "skipped": "yellow"}
