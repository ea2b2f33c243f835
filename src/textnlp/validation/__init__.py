"""Validation of generated datasets: per-text quality, similarity, duplicates, leakage, a gate.

Imports are light: the names below load their module on first use, and models, tokenisers and
plotting load on first use inside the functions.
See ``README.md`` beside this file for every metric's meaning and range.
"""

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as type checkers see them; at run time, on first use
    from textnlp.validation.dedup import (
        DuplicateGroups,
        NearDuplicates,
        exact_duplicates,
        find_near_duplicates,
    )
    from textnlp.validation.embedding import Embedder
    from textnlp.validation.gate import Gate, GateResult, RuleResult, evaluate, load_gate
    from textnlp.validation.html import render_html
    from textnlp.validation.leakage import find_leakage
    from textnlp.validation.loader import DatasetRow, load_rows
    from textnlp.validation.models import DatasetReport, LeakageMatch
    from textnlp.validation.pii import PIIFinding, find_pii, iban_valid, luhn_valid, mask_pii
    from textnlp.validation.quality import TextQuality, text_quality
    from textnlp.validation.report import validate_dataset
    from textnlp.validation.similarity import PairScores, SimilarityReport, bert_score, similarity

#: Each public name's module: importing the package costs nothing (``generation.templates``
#: needs ``safe_schema`` only, and ``textnlp --help`` must not load numpy).
_EXPORTS: dict[str, str] = {
    "DuplicateGroups": "textnlp.validation.dedup",
    "NearDuplicates": "textnlp.validation.dedup",
    "exact_duplicates": "textnlp.validation.dedup",
    "find_near_duplicates": "textnlp.validation.dedup",
    "Embedder": "textnlp.validation.embedding",
    "Gate": "textnlp.validation.gate",
    "GateResult": "textnlp.validation.gate",
    "RuleResult": "textnlp.validation.gate",
    "evaluate": "textnlp.validation.gate",
    "load_gate": "textnlp.validation.gate",
    "render_html": "textnlp.validation.html",
    "LeakageMatch": "textnlp.validation.models",
    "find_leakage": "textnlp.validation.leakage",
    "DatasetRow": "textnlp.validation.loader",
    "load_rows": "textnlp.validation.loader",
    "DatasetReport": "textnlp.validation.models",
    "PIIFinding": "textnlp.validation.pii",
    "find_pii": "textnlp.validation.pii",
    "iban_valid": "textnlp.validation.pii",
    "luhn_valid": "textnlp.validation.pii",
    "mask_pii": "textnlp.validation.pii",
    "TextQuality": "textnlp.validation.quality",
    "text_quality": "textnlp.validation.quality",
    "validate_dataset": "textnlp.validation.report",
    "PairScores": "textnlp.validation.similarity",
    "SimilarityReport": "textnlp.validation.similarity",
    "bert_score": "textnlp.validation.similarity",
    "similarity": "textnlp.validation.similarity",
}

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


class _Package(ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule ``similarity`` sets it on the package, over the public
        # function of that name (which the eager imports used to set last): the function stays.
        if name in _EXPORTS and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later reads find it without this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
