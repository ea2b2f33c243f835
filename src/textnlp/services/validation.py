"""The API's validation use cases: quality of texts, similarity to references, and running
aggregates of what was measured (``validation_stats``: one row per kind and metric; a user is
shown their own validations' alone, an administrator everyone's).

The metrics come from ``textnlp.validation``; CPU-bound work runs in the caller's thread (the
API's sync routes run in its thread pool). A ``json_schema`` goes through
``textnlp.validation.safe_schema`` (RE2 regexes, no fetched ``$ref``, bounded depth and work):
one it cannot apply raises ``InvalidInput``.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any

from textnlp.adapters.db.validation_stats import StatRow, ValidationStatsRepository

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from textnlp.validation.quality import TextQuality
    from textnlp.validation.similarity import SimilarityReport

#: What each validation measures (``GET /validate/metrics`` shows it).
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


@dataclass(frozen=True)
class QualityOutcome:
    results: list[TextQuality]
    #: The mean of each of ``QUALITY_METRICS`` over the texts (None where none had it).
    summary: dict[str, float | None]


class ValidationService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def quality(
        self,
        texts: list[str],
        *,
        owner: str,
        json_schema: dict[str, Any] | None = None,
        expect_json: bool = False,
        readability: bool = True,
        language: bool = True,
    ) -> QualityOutcome:
        from textnlp.validation import text_quality
        from textnlp.validation.safe_schema import compiled

        schema = compiled(json_schema) if json_schema is not None else None
        results = [
            text_quality(
                text,
                json_schema=schema,
                expect_json=expect_json,
                readability=readability,
                language=language,
            )
            for text in texts
        ]
        rows = [_quality_row(r) for r in results]
        with self.sessions.begin() as session:
            repo = ValidationStatsRepository(session)
            for row in rows:
                repo.record("quality", row, owner)
        summary = {name: _mean([row[name] for row in rows]) for name in QUALITY_METRICS}
        return QualityOutcome(results, summary)

    def similarity(
        self,
        candidates: list[str],
        references: list[str],
        *,
        owner: str,
        embeddings: bool = False,
        bertscore: bool = False,
    ) -> SimilarityReport:
        from textnlp.validation import similarity

        report = similarity(candidates, references, embeddings=embeddings, bertscore=bertscore)
        with self.sessions.begin() as session:
            repo = ValidationStatsRepository(session)
            repo.record("similarity", report.corpus.model_dump(), owner)
        return report

    def aggregates(self, owner: str | None) -> list[StatRow]:
        """Every (kind, metric) ``owner`` measured so far (None: everyone, for administrators):
        count, total, min and max. Never another user's: the difference of everyone's before
        and after a validation is that validation's measures."""
        with self.sessions() as session:
            repo = ValidationStatsRepository(session)
            rows: list[StatRow] = [*(repo.all() if owner is None else repo.of_owner(owner))]
            session.expunge_all()
            return rows


def _quality_row(r: TextQuality) -> dict[str, float | None]:
    return {
        "n_chars": float(r.n_chars),
        "n_words": float(r.n_words),
        "distinct_2": r.distinct_2,
        "repeated_ngram_ratio": r.repeated_ngram_ratio,
        "flesch_reading_ease": r.flesch_reading_ease,
        "pii_findings": float(len(r.pii)),
        "empty": float(r.empty),
        "json_valid": None if r.json_valid is None else float(r.json_valid),
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None
