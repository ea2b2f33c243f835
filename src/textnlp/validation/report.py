"""``validate_dataset``: every dataset-level check in one report, judged by the release gate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from textnlp.validation import diversity as div
from textnlp.validation.arguments import check_arguments
from textnlp.validation.dedup import (
    DEFAULT_THRESHOLD,
    DuplicateGroups,
    exact_duplicates,
    find_near_duplicates,
)
from textnlp.validation.embedding import Embedder, Mask, Vectors
from textnlp.validation.examples import examples_of, shown_text
from textnlp.validation.gate import Gate, evaluate
from textnlp.validation.leakage import (
    DEFAULT_CONTAINMENT_THRESHOLD,
    DEFAULT_EMBEDDING_THRESHOLD,
    DEFAULT_NGRAM_THRESHOLD,
    find_leakage,
)
from textnlp.validation.loader import iter_rows
from textnlp.validation.measures import NO, UNKNOWN, YES, Measures, measure
from textnlp.validation.models import (
    DatasetReport,
    DiversitySummary,
    DuplicateCluster,
    DuplicateSummary,
    LeakageSummary,
    NearDuplicateSummary,
    PIISummary,
    QualitySummary,
)
from textnlp.validation.quality import detect_language, readability_scores
from textnlp.validation.schema import template_schema
from textnlp.validation.stats import distribution, histogram, mean_or_none
from textnlp.validation.text import preview

if TYPE_CHECKING:
    from textnlp.generation.templates import TemplateLibrary

DEFAULT_QUALITY_SAMPLE = 500
TOP_CLUSTERS = 20


def validate_dataset(
    source: Path | str | Sequence[Any],
    *,
    field: str = "text",
    reference: Path | str | Sequence[Any] | None = None,
    reference_field: str | None = None,
    gate: Gate | Mapping[str, Any] | Path | str | None = None,
    near_dup_threshold: float = DEFAULT_THRESHOLD,
    leakage_ngram_threshold: float = DEFAULT_NGRAM_THRESHOLD,
    leakage_containment_threshold: float = DEFAULT_CONTAINMENT_THRESHOLD,
    leakage_embedding_threshold: float | None = DEFAULT_EMBEDDING_THRESHOLD,
    json_schema: Mapping[str, Any] | Literal[False] | None = None,
    embeddings: bool = True,
    embedder: Embedder | None = None,
    sample_size: int = div.DEFAULT_SAMPLE,
    quality_sample: int = DEFAULT_QUALITY_SAMPLE,
    templates: TemplateLibrary | None = None,
    requested: int | None = None,
) -> DatasetReport:
    """Validate a JSONL/CSV/Parquet file (or records, mappings, strings) and judge it by ``gate``.

    ``reference`` turns on the leakage check; ``embeddings=False`` skips everything that needs
    the MiniLM model (semantic diversity, embedding leakage). ``json_schema`` is the schema
    every text must meet; None looks it up (``schema.schema_for``) in ``templates`` (the
    installation's library; None: the built-in catalogue), False checks no JSON.
    ``gate`` is a ``Gate``, a mapping of its rules or a YAML file. ``requested``: the records
    the generation that made the dataset was asked for (its failed ones are in no dataset
    file, so only this tells the gate of them: ``missing_rate``). A wrong argument raises
    ``InvalidParameter`` naming it, bad input ``DatasetError``, a bad gate file ``ConfigError``.
    Rows are streamed: the report holds the texts and about 0.7 KB more a record (README).
    """
    checked = check_arguments(
        source=source,
        field=field,
        reference=reference,
        reference_field=reference_field,
        gate=gate,
        near_dup_threshold=near_dup_threshold,
        leakage_ngram_threshold=leakage_ngram_threshold,
        leakage_containment_threshold=leakage_containment_threshold,
        leakage_embedding_threshold=leakage_embedding_threshold,
        json_schema=json_schema,
        embeddings=embeddings,
        embedder=embedder,
        sample_size=sample_size,
        quality_sample=quality_sample,
        requested=requested,
    )
    source, reference, json_schema = checked.source, checked.reference, checked.json_schema
    gate_model = checked.gate_model()
    # Rows are read one at a time and kept as their texts and a few figures (measures.py);
    # a missing reference file is refused before the dataset is read, not after.
    rows = iter_rows(source, field=field)
    ref_rows = (
        iter_rows(reference, field=reference_field or field, noun="reference")
        if reference is not None
        else None
    )
    measures = measure(rows)
    count = len(measures)
    refs = [row.text for row in ref_rows] if ref_rows is not None else None
    texts = measures.texts
    # The template's schema is the shape of a record's whole output (``text``), not of a field
    # chosen inside it (``--field data.answer``).
    schema: dict[str, Any] | None
    if json_schema is False:
        schema = None
    elif json_schema is not None:
        schema = dict(json_schema)
    else:
        schema = template_schema(measures.made_by, templates) if field == "text" else None
    if schema is not None:
        measures.check_json(schema)
    sample = div.sample_indices(count, sample_size)
    vectors = readable = None
    if embeddings and count > 0:
        embedder = embedder or Embedder.shared()
        wanted = [texts[i] for i in (range(count) if refs is not None else sample)]
        vectors, readable = embedder.encode(wanted), embedder.readable(wanted)
    exact = exact_duplicates(texts)
    near = find_near_duplicates(texts, threshold=near_dup_threshold)
    report = DatasetReport(
        source=str(source) if isinstance(source, str | Path) else f"{count} records",
        field=field,
        count=count,
        words=distribution(measures.column("n_words")),
        tokens=distribution(measures.column("n_tokens")),
        chars=distribution(measures.column("n_chars")),
        quality=_quality(measures, schema is not None, quality_sample),
        exact_duplicates=_duplicates(exact, texts),
        near_duplicates=NearDuplicateSummary(
            **_duplicates(near, texts).model_dump(),
            threshold=near.threshold,
            num_perm=near.num_perm,
            bands=near.bands,
            rows=near.rows,
            pair_similarity=histogram(near.pair_similarity, bins=20, low=near.threshold, high=1.0)
            if near.pair_similarity
            else None,
        ),
        pii=_pii(measures),
        diversity=_diversity(
            texts,
            sample,
            vectors if refs is None or vectors is None else vectors[sample],
            readable if refs is None or readable is None else readable[sample],
        ),
        leakage=None,
        labels=measures.labels.stats(),
        fields=measures.fields.stats() if measures.has_data else [],
        examples=examples_of(measures, exact, near, schema),
        gate=evaluate(gate_model, {}),
        json_schema=schema,
        requested=requested,
    )
    if refs is not None:
        ref_vectors = ref_readable = None
        if vectors is not None:
            embedder = embedder or Embedder.shared()
            ref_vectors, ref_readable = embedder.encode(refs), embedder.readable(refs)
        matches, best = find_leakage(
            texts,
            refs,
            ngram_threshold=leakage_ngram_threshold,
            containment_threshold=leakage_containment_threshold,
            embedding_threshold=leakage_embedding_threshold if vectors is not None else None,
            vectors=vectors,
            ref_vectors=ref_vectors,
            readable=readable,
            reference_readable=ref_readable,
        )
        report.leakage = LeakageSummary(
            reference=str(reference)
            if isinstance(reference, str | Path)
            else f"{len(refs)} records",
            reference_count=len(refs),
            ngram_threshold=leakage_ngram_threshold,
            containment_threshold=leakage_containment_threshold,
            embedding_threshold=leakage_embedding_threshold if vectors is not None else None,
            embedding_unreadable=_unread(readable),
            reference_embedding_unreadable=_unread(ref_readable),
            leaked=len(matches),
            rate=len(matches) / count,
            matches=sorted(
                matches,
                key=lambda m: -max(m.ngram_jaccard or 0, m.containment or 0, m.cosine or 0),
            )[:50],
            reference_similarity=histogram(best.tolist(), bins=20, low=-0.2, high=1.0)
            if best is not None
            else None,
        )
    report.gate = evaluate(gate_model, report.metrics())
    return report


def _quality(measures: Measures, json_checked: bool, size: int) -> QualitySummary:
    n = len(measures)
    # Truncation is measurable only where the generator said why it stopped (finish_reason):
    # a record without one is unknown, not "not truncated".
    truncation = measures.column("truncated")
    known = int(np.count_nonzero(truncation != UNKNOWN))
    truncated = int(np.count_nonzero(truncation == YES)) if known else None
    invalid = int(np.count_nonzero(measures.column("json_valid") == NO)) if json_checked else None
    empty = int(np.count_nonzero(measures.column("empty")))
    replaced = int(np.count_nonzero(measures.column("replacement")))
    distinct_2 = measures.column("distinct_2")
    sample = div.sample_indices(n, size, seed=1)
    ease: list[float] = []
    grade: list[float] = []
    languages: Counter[str] = Counter()
    for i in sample:
        e, g = readability_scores(measures.texts[i])
        if e is not None and g is not None:
            ease.append(e)
            grade.append(g)
        languages[detect_language(measures.texts[i]) or "unknown"] += 1
    return QualitySummary(
        empty=empty,
        empty_rate=empty / n,
        truncated=truncated,
        truncated_rate=truncated / known if truncated is not None else None,
        json_invalid=invalid,
        json_invalid_rate=invalid / n if invalid is not None else None,
        replacement_char=replaced,
        replacement_char_rate=replaced / n,
        mean_repeated_ngram_ratio=float(np.mean(measures.column("repeated_ngram_ratio"))),
        mean_distinct_2=mean_or_none(distinct_2[~np.isnan(distinct_2)]),
        sample_size=len(sample),
        mean_flesch_reading_ease=mean_or_none(ease),
        mean_flesch_kincaid_grade=mean_or_none(grade),
        languages=dict(languages.most_common()),
    )


def _duplicates(groups: DuplicateGroups, texts: list[str]) -> DuplicateSummary:
    return DuplicateSummary(
        clusters=len(groups.groups),
        records=sum(len(g) for g in groups.groups),
        redundant=groups.redundant,
        rate=groups.rate,
        top=[
            DuplicateCluster(size=len(g), indices=g[:20], text=preview(shown_text(texts[g[0]])))
            for g in groups.groups[:TOP_CLUSTERS]
        ],
    )


def _pii(measures: Measures) -> PIISummary:
    records = int(np.count_nonzero(measures.column("pii")))
    return PIISummary(
        records=records,
        rate=records / len(measures),
        by_kind=dict(measures.pii_kinds.most_common()),
    )


def _diversity(
    texts: list[str], sample: list[int], vectors: Vectors | None, readable: Mask | None
) -> DiversitySummary:
    picked = [texts[i] for i in sample]
    summary = DiversitySummary(
        sample_size=len(sample),
        distinct_1=div.corpus_distinct(picked, 1),
        distinct_2=div.corpus_distinct(picked, 2),
        distinct_3=div.corpus_distinct(picked, 3),
        embedding_unreadable=_unread(readable),
    )
    # Texts the model cannot read embed alike (all [UNK]): kept in, they would make a varied
    # Thai or emoji dataset look like one sentence repeated.
    if vectors is not None and readable is not None:
        vectors = vectors[readable]
    if vectors is not None and len(vectors) > 1:
        summary.semantic = div.semantic_diversity(vectors)
        summary.semantic_clusters = div.count_clusters(vectors)
        summary.cluster_threshold = div.DEFAULT_CLUSTER_THRESHOLD
        summary.nearest_neighbour_similarity = histogram(
            div.nearest_neighbour_similarity(vectors).tolist(), bins=20, low=-0.2, high=1.0
        )
    return summary


def _unread(readable: Mask | None) -> int | None:
    """How many texts the embedding model could not read (None: none embedded)."""
    return None if readable is None else int(np.count_nonzero(~readable))
