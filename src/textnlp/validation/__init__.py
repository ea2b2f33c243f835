"""Validation of generated datasets: per-text quality, similarity, duplicates, leakage, a gate.

Imports are light: models, tokenisers and plotting load on first use inside the functions.
See ``README.md`` beside this file for every metric's meaning and range.
"""

from textnlp.validation.dedup import (
    DuplicateGroups,
    NearDuplicates,
    exact_duplicates,
    find_near_duplicates,
)
from textnlp.validation.embedding import Embedder
from textnlp.validation.gate import Gate, GateResult, RuleResult, evaluate, load_gate
from textnlp.validation.html import render_html
from textnlp.validation.leakage import LeakageMatch, find_leakage
from textnlp.validation.loader import DatasetRow, load_rows
from textnlp.validation.models import DatasetReport
from textnlp.validation.pii import PIIFinding, find_pii, iban_valid, luhn_valid, mask_pii
from textnlp.validation.quality import TextQuality, text_quality
from textnlp.validation.report import validate_dataset
from textnlp.validation.similarity import PairScores, SimilarityReport, bert_score, similarity

__all__ = [
    "DatasetReport",
    "DatasetRow",
    "DuplicateGroups",
    "Embedder",
    "Gate",
    "GateResult",
    "LeakageMatch",
    "NearDuplicates",
    "PIIFinding",
    "PairScores",
    "RuleResult",
    "SimilarityReport",
    "TextQuality",
    "bert_score",
    "evaluate",
    "exact_duplicates",
    "find_leakage",
    "find_near_duplicates",
    "find_pii",
    "iban_valid",
    "load_gate",
    "load_rows",
    "luhn_valid",
    "mask_pii",
    "render_html",
    "similarity",
    "text_quality",
    "validate_dataset",
]
