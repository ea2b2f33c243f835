"""A generated record and its provenance."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from textnlp.domain.generation import FinishReason, GenerationParams

#: ``rejected``: a recipe's filter refused the record (kept apart from the dataset).
RecordStatus = Literal["ok", "failed", "rejected"]


class CellProvenance(BaseModel):
    """How one llm cell of a recipe record was made."""

    model_config = ConfigDict(extra="forbid")

    model: str
    params: GenerationParams
    seed: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    cached: bool = False
    cost_usd: float | None = None
    #: Why the cell's last call stopped (a truncated answer says ``length``).
    finish_reason: FinishReason = "stop"


class Provenance(BaseModel):
    """Everything needed to reproduce or audit one record."""

    model_config = ConfigDict(extra="forbid")

    template_id: str
    template_version: str
    model: str
    params: GenerationParams
    seed: int
    #: Tokens of every attempt (a JSON template's retries too), as ``cost_usd`` counts them.
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason
    latency_s: float
    attempts: int = 1
    cached: bool = False
    created_at: str
    #: Estimated price in US dollars of every attempt (0 from the cache); None without a price.
    cost_usd: float | None = None
    #: A recipe record's llm cells by column (None for a template's record).
    cells: dict[str, CellProvenance] | None = None

    @field_validator("cost_usd", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """CSV files write a missing cost as an empty cell."""
        return None if value == "" else value


class Record(BaseModel):
    """One row of a generated dataset.

    ``text`` is the model's answer; ``data`` holds the parsed JSON where the template asks for
    JSON; ``variables`` are the sampled template variables, which double as labels.
    """

    model_config = ConfigDict(extra="forbid")

    index: int
    status: RecordStatus = "ok"
    text: str
    data: dict[str, Any] | None = None
    variables: dict[str, Any] = {}
    error: str | None = None
    provenance: Provenance

    @property
    def fills_a_slot(self) -> bool:
        """Whether the record is one of the ``count`` a run was asked for: an accepted one,
        or a template's failed one (a recipe replaces its failed and rejected candidates)."""
        return self.status == "ok" or (self.status == "failed" and self.provenance.cells is None)
