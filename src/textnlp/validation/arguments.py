"""``validate_dataset``'s arguments, checked before any work is done.

A wrong argument is refused naming it (``InvalidParameter``), a record whose keys are not all
strings naming the record (``DatasetError``), instead of a TypeError from deep inside a metric or a
figure computed on the wrong thing (a dict's keys taken for records). Numbers are strict
(``"0.5"`` and ``True`` are not numbers) and finite.
"""

from __future__ import annotations

import os
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from textnlp.errors import DatasetError, InvalidParameter, first_error
from textnlp.validation.embedding import Embedder
from textnlp.validation.gate import Gate, load_gate
from textnlp.validation.safe_schema import compiled

Dataset = Path | str | list[Any]


class Arguments(BaseModel):
    """What ``validate_dataset`` was given, checked; ``gate`` is a ``Gate`` or a file's path."""

    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True
    )

    source: Dataset
    field: str = Field(min_length=1)
    reference: Dataset | None
    reference_field: str | None = Field(min_length=1)
    gate: Gate | Path | None
    near_dup_threshold: float = Field(gt=0, le=1)
    leakage_ngram_threshold: float = Field(gt=0, le=1)
    leakage_containment_threshold: float = Field(gt=0, le=1)
    leakage_embedding_threshold: float | None = Field(ge=-1, le=1)
    json_schema: dict[str, Any] | Literal[False] | None
    embeddings: bool
    embedder: Embedder | None
    sample_size: int = Field(ge=1)
    quality_sample: int = Field(ge=1)
    requested: int | None = Field(ge=1)

    @field_validator("source", "reference", mode="plain")
    @classmethod
    def _dataset(cls, value: Any, info: ValidationInfo) -> Dataset | None:
        if value is None and info.field_name == "reference":
            return None
        if isinstance(value, str | Path):
            return value
        if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
            return Path(value)
        # A mapping is one record (its keys are not records); a set has no record order.
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
            return list(value)
        hint = " (put a single record in a list)" if isinstance(value, Mapping) else ""
        raise ValueError(f"give a dataset file's path or a list of records{hint}")

    @field_validator("gate", mode="plain")
    @classmethod
    def _gate(cls, value: Any) -> Gate | Path | None:
        if value is None or isinstance(value, Path):
            return value
        if isinstance(value, str) or (
            isinstance(value, os.PathLike) and isinstance(os.fspath(value), str)
        ):
            return Path(value)
        if isinstance(value, Gate):  # a model's fields can be set unchecked after it was built
            value = value.model_dump()
        if isinstance(value, Mapping):
            try:
                return Gate.model_validate(dict(value))
            except ValidationError as exc:
                raise ValueError(first_error(exc, root="(root)")) from None
        raise ValueError("give a Gate, a mapping of rule: threshold or a gate file's path")

    @field_validator("json_schema", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> Any:
        return dict(value) if isinstance(value, Mapping) else value

    def gate_model(self) -> Gate:
        if isinstance(self.gate, Path):
            return load_gate(self.gate)
        return self.gate or Gate()


def check_arguments(**given: Any) -> Arguments:
    """``given`` checked: ``InvalidParameter`` naming the first wrong argument, ``DatasetError``
    naming a record with a key that is not a string (the loader refuses other bad records)."""
    try:
        arguments = Arguments.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "arguments"
        got = reprlib.repr(error.get("input"))
        raise InvalidParameter(f"{first_error(exc)} (got {got})", parameter=name) from None
    if isinstance(arguments.json_schema, dict):
        compiled(arguments.json_schema)  # a schema it cannot apply is refused now, not per row
    if isinstance(arguments.source, list):
        check_records(arguments.source, "the records")
    if isinstance(arguments.reference, list):
        check_records(arguments.reference, "the reference records")
    return arguments


def check_records(records: Sequence[Any], where: str) -> None:
    """``DatasetError`` for the first mapping with a key that is not a string: a record's keys
    are its field names (a file's always are; records in memory can hold anything)."""
    for number, record in enumerate(records, 1):
        if isinstance(record, Mapping):
            for key in record:
                if not isinstance(key, str):
                    raise DatasetError(
                        f"{where}, record {number}: key {reprlib.repr(key)} is not a string"
                    )
