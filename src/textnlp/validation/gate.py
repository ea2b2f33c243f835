"""The release gate: thresholds a dataset must meet before it ships.

A gate file is YAML with any of the rules below; a rule given overrides the default, ``null``
switches it off, an unknown name is an error (typos must not silently pass)::

    max_exact_duplicate_rate: 0.01
    max_near_duplicate_rate: 0.05
    max_pii_rate: 0.0
    min_lexical_diversity: 0.3
    max_leakage_rate: 0.0

A rule whose metric was not computed (no reference, embeddings off...) is ``skipped`` and does
not fail the gate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from textnlp.errors import ConfigError, first_error
from textnlp.small_files import read_small_text
from textnlp.strict_yaml import UniqueKeyLoader

RuleStatus = Literal["pass", "fail", "skipped"]

#: rule name -> (metric of DatasetReport.metrics(), comparison, meaning)
RULES: dict[str, tuple[str, Literal["<=", ">="], str]] = {
    "min_records": ("count", ">=", "records in the dataset"),
    "max_missing_rate": (
        "missing_rate",
        "<=",
        "share of the records asked for that failed (a generation's; skipped for a file)",
    ),
    "max_empty_rate": ("empty_rate", "<=", "share of empty texts"),
    "max_truncated_rate": (
        "truncated_rate",
        "<=",
        "share stopped at max_tokens (of those with a finish_reason)",
    ),
    "max_json_invalid_rate": ("json_invalid_rate", "<=", "share breaking the JSON schema"),
    "max_replacement_char_rate": (
        "replacement_char_rate",
        "<=",
        "share holding U+FFFD (bytes that were not UTF-8)",
    ),
    "max_exact_duplicate_rate": ("exact_duplicate_rate", "<=", "share of redundant exact copies"),
    "max_near_duplicate_rate": ("near_duplicate_rate", "<=", "share of redundant near copies"),
    "max_pii_rate": ("pii_rate", "<=", "share of texts with personal data"),
    "max_mean_repetition": ("mean_repeated_ngram_ratio", "<=", "mean repeated 3-gram ratio"),
    "min_lexical_diversity": ("lexical_diversity", ">=", "corpus distinct-2 on a sample"),
    "min_semantic_diversity": ("semantic_diversity", ">=", "mean pairwise embedding distance"),
    "max_leakage_rate": ("leakage_rate", "<=", "share too close to a reference"),
}


class Gate(BaseModel):
    """Thresholds; ``None`` switches a rule off. The defaults suit a first look at a dataset.

    Thresholds are strict, finite numbers: ``true`` or ``"0.5"`` is not read as a number, and
    NaN would make every comparison false (a rule that never fails).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    min_records: float | None = Field(default=1, strict=True, ge=0)
    max_missing_rate: float | None = Field(default=0.1, strict=True, ge=0, le=1)
    max_empty_rate: float | None = Field(default=0.05, strict=True, ge=0, le=1)
    max_truncated_rate: float | None = Field(default=0.5, strict=True, ge=0, le=1)
    max_json_invalid_rate: float | None = Field(default=0.1, strict=True, ge=0, le=1)
    #: Off unless asked for: U+FFFD is also honest text (a dataset scraped or converted with
    #: it, an article about encodings), and a default would fail datasets that passed before.
    max_replacement_char_rate: float | None = Field(default=None, strict=True, ge=0, le=1)
    max_exact_duplicate_rate: float | None = Field(default=0.05, strict=True, ge=0, le=1)
    max_near_duplicate_rate: float | None = Field(default=0.1, strict=True, ge=0, le=1)
    max_pii_rate: float | None = Field(default=0.01, strict=True, ge=0, le=1)
    max_mean_repetition: float | None = Field(default=0.5, strict=True, ge=0, le=1)
    min_lexical_diversity: float | None = Field(default=0.2, strict=True, ge=0, le=1)
    min_semantic_diversity: float | None = Field(default=0.1, strict=True, ge=0, le=2)
    max_leakage_rate: float | None = Field(default=0.01, strict=True, ge=0, le=1)


class RuleResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    metric: str
    op: Literal["<=", ">="]
    threshold: float
    value: float | None
    status: RuleStatus
    description: str


class GateResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool
    rules: list[RuleResult]


def load_gate(path: Path | str) -> Gate:
    """The gate of a YAML file; ``ConfigError`` (exit 2) when it is missing or malformed."""
    path = Path(path)
    try:
        text = read_small_text(path, lambda why: ConfigError(f"gate file {path} is {why}"))
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506
    except FileNotFoundError:
        raise ConfigError(f"gate file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read gate file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"gate file {path} is not valid YAML: {_one_line(str(exc))}") from None
    except RecursionError:  # PyYAML composes nested nodes recursively
        raise ConfigError(f"gate file {path} is nested too deep to read") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"gate file {path} must be a mapping of rule: threshold")
    try:
        return Gate.model_validate(raw)
    except ValidationError as exc:
        unknown = f"Extra inputs are not permitted (known rules: {', '.join(RULES)})"
        reason = first_error(exc, root="(root)", extra=unknown)
        raise ConfigError(f"gate file {path}: {reason}") from None


class _UniqueKeyLoader(UniqueKeyLoader):
    """``strict_yaml``'s loader (a key given twice is an error: a rule tightened above and
    loosened below would pass unnoticed), reading YAML 1.2's floats."""


# YAML 1.2's floats (``1e-3``, ``5E-2``): PyYAML reads YAML 1.1, where an exponent needs a dot,
# and gave the threshold as the string "1e-3" (refused as "not a valid number").
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def evaluate(gate: Gate, metrics: Mapping[str, float | None]) -> GateResult:
    """Each active rule against the report's metrics; the gate passes when no rule fails."""
    results: list[RuleResult] = []
    for rule, (metric, op, description) in RULES.items():
        threshold = getattr(gate, rule)
        if threshold is None:
            continue
        value = metrics.get(metric)
        if value is None:
            status: RuleStatus = "skipped"
        else:
            ok = value <= threshold + 1e-12 if op == "<=" else value >= threshold - 1e-12
            status = "pass" if ok else "fail"
        results.append(
            RuleResult(
                rule=rule,
                metric=metric,
                op=op,
                threshold=float(threshold),
                value=value,
                status=status,
                description=description,
            )
        )
    return GateResult(passed=all(r.status != "fail" for r in results), rules=results)


def _one_line(text: str) -> str:
    return " ".join(text.split())
