"""``/api/v1/validate``: per-text quality, similarity to references, and what was measured.

The metrics come from ``textnlp.validation``; each call adds its figures to running aggregates
in the database (``GET metrics``). CPU-bound work runs in the thread pool (sync routes). A
``json_schema`` goes through ``textnlp.validation.safe_schema`` (RE2 regexes, no fetched
``$ref``, bounded depth and work): one it cannot apply answers 422.
"""

from __future__ import annotations

from statistics import fmean

from fastapi import APIRouter

from textnlp.adapters.db.validation_stats import ValidationStatsRepository
from textnlp.api.deps import CurrentUser, SessionDep
from textnlp.api.schemas import (
    MetricAggregate,
    QualityRequest,
    QualityResponse,
    SimilarityRequest,
    SimilarityResponse,
    ValidationMetrics,
)
from textnlp.validation.safe_schema import compiled

router = APIRouter(prefix="/validate", tags=["validate"])

QUALITY_METRICS = {
    "n_chars": "characters (code points), >= 0",
    "n_words": "words (letter/digit runs; one per CJK character), >= 0",
    "distinct_2": "unique word bigrams / bigrams, 0-1 (1 = no repetition)",
    "repeated_ngram_ratio": "share of words inside a repeated word 3-gram, 0-1 (0 = none)",
    "flesch_reading_ease": "Flesch reading ease, about 0-100, higher = easier",
    "pii_findings": "personal data found (email, phone, card, IBAN, IP, SSN), >= 0",
    "empty": "1 when the text is only whitespace",
    "json_valid": "1 when the text holds the expected JSON object",
}
SIMILARITY_METRICS = {
    "bleu": "sacrebleu corpus BLEU, 0-100",
    "chrf": "sacrebleu corpus chrF, 0-100",
    "rouge1": "mean ROUGE-1 F, 0-1",
    "rouge2": "mean ROUGE-2 F, 0-1",
    "rougeL": "mean ROUGE-L F, 0-1",
    "cosine": "mean MiniLM embedding cosine, -1..1 (with embeddings: true)",
    "bertscore_f1": "mean BERTScore F1 with MiniLM, -1..1 (with bertscore: true)",
}


@router.post("/quality", response_model=QualityResponse)
def quality(body: QualityRequest, user: CurrentUser, session: SessionDep) -> QualityResponse:
    """Quality metrics of each text, and their means."""
    from textnlp.validation import text_quality

    schema = compiled(body.json_schema) if body.json_schema is not None else None
    results = [
        text_quality(
            text,
            json_schema=schema,
            expect_json=body.expect_json,
            readability=body.readability,
            language=body.language,
        )
        for text in body.texts
    ]
    per_text = [
        {
            "n_chars": float(r.n_chars),
            "n_words": float(r.n_words),
            "distinct_2": r.distinct_2,
            "repeated_ngram_ratio": r.repeated_ngram_ratio,
            "flesch_reading_ease": r.flesch_reading_ease,
            "pii_findings": float(len(r.pii)),
            "empty": float(r.empty),
            "json_valid": None if r.json_valid is None else float(r.json_valid),
        }
        for r in results
    ]
    summary = {name: _mean([row[name] for row in per_text]) for name in QUALITY_METRICS}
    with session.begin():
        repo = ValidationStatsRepository(session)
        for row in per_text:
            repo.record("quality", row)
    return QualityResponse(
        count=len(results), results=[r.model_dump(mode="json") for r in results], summary=summary
    )


@router.post("/similarity", response_model=SimilarityResponse)
def similarity(
    body: SimilarityRequest, user: CurrentUser, session: SessionDep
) -> SimilarityResponse:
    """BLEU, chrF and ROUGE (and optionally embedding cosine, BERTScore) to references."""
    from textnlp.validation import similarity as score

    report = score(
        body.candidates, body.references, embeddings=body.embeddings, bertscore=body.bertscore
    )
    corpus = report.corpus.model_dump()
    with session.begin():
        ValidationStatsRepository(session).record("similarity", corpus)
    return SimilarityResponse(
        count=report.count, pairs=[p.model_dump() for p in report.pairs], corpus=corpus
    )


@router.get("/metrics", response_model=ValidationMetrics)
def metrics(user: CurrentUser, session: SessionDep) -> ValidationMetrics:
    """What each validation measures, and aggregates of every validation served so far."""
    rows = ValidationStatsRepository(session).all()
    return ValidationMetrics(
        measured={"quality": QUALITY_METRICS, "similarity": SIMILARITY_METRICS},
        aggregates=[
            MetricAggregate(
                kind=row.kind,
                metric=row.metric,
                count=row.count,
                mean=row.total / row.count if row.count else 0.0,
                min=row.minimum,
                max=row.maximum,
            )
            for row in rows
        ],
    )


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None
