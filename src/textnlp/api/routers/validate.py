"""``/api/v1/validate``: per-text quality, similarity to references, and what was measured.

Sync routes (they run in the thread pool: the metrics are CPU-bound) over
``textnlp.services.validation``; a ``json_schema`` it cannot apply safely answers 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from textnlp.api.deps import CurrentUser
from textnlp.api.schemas import (
    MetricAggregate,
    QualityRequest,
    QualityResponse,
    SimilarityRequest,
    SimilarityResponse,
    ValidationMetrics,
)
from textnlp.services.validation import QUALITY_METRICS, SIMILARITY_METRICS, ValidationService

router = APIRouter(prefix="/validate", tags=["validate"])


def get_validation(request: Request) -> ValidationService:
    service: ValidationService = request.app.state.validation
    return service


ValidationDep = Annotated[ValidationService, Depends(get_validation)]


@router.post("/quality", response_model=QualityResponse)
def quality(body: QualityRequest, user: CurrentUser, service: ValidationDep) -> QualityResponse:
    """Quality metrics of each text, and their means."""
    outcome = service.quality(
        body.texts,
        owner=user.id,
        json_schema=body.json_schema,
        expect_json=body.expect_json,
        readability=body.readability,
        language=body.language,
    )
    return QualityResponse(
        count=len(outcome.results),
        results=[r.model_dump(mode="json") for r in outcome.results],
        summary=outcome.summary,
    )


@router.post("/similarity", response_model=SimilarityResponse)
def similarity(
    body: SimilarityRequest, user: CurrentUser, service: ValidationDep
) -> SimilarityResponse:
    """BLEU, chrF and ROUGE (and optionally embedding cosine, BERTScore) to references."""
    report = service.similarity(
        body.candidates,
        body.references,
        owner=user.id,
        embeddings=body.embeddings,
        bertscore=body.bertscore,
    )
    return SimilarityResponse(
        count=report.count,
        pairs=[p.model_dump() for p in report.pairs],
        corpus=report.corpus.model_dump(),
        embedding_unreadable=report.embedding_unreadable,
    )


@router.get("/metrics", response_model=ValidationMetrics)
def metrics(user: CurrentUser, service: ValidationDep) -> ValidationMetrics:
    """What each validation measures, and aggregates of the validations you asked for so far
    (an administrator's: everyone's)."""
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
            for row in service.aggregates(None if user.is_admin else user.id)
        ],
    )
