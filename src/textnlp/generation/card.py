"""The dataset card: the ``README.md`` of an export, saying what made the dataset.

Its own module because the card is about the run (models, counts, rejections, the gate), not
the rows: ``export`` writes the rows and the directory and asks this module for the card text,
and a run that knows more than its records rewrites the card afterwards with ``write_card``.
The directory's layout and marker (``CARD_NAME``, ``CARD_MARKER``, ``DATA_GLOB``) stay with
``export``, which uses them to recognise its own directories.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from textnlp.domain import Record
from textnlp.errors import OutputError
from textnlp.generation.export import CARD_MARKER, CARD_NAME, DATA_GLOB, ExportSpec, is_export
from textnlp.generation.writers import atomic_file


@dataclass
class DatasetCard:
    """What a dataset card says: the run that made the dataset, for people and the Hub.

    ``write_dataset`` writes one from the records alone (``card_from_records``); a run that
    knows more (requested, candidates, rejections, the gate, the run seed) writes its own
    with ``write_card`` afterwards.
    """

    id: str
    version: str
    kind: Literal["recipe", "template"] = "recipe"
    description: str = ""
    models: list[str] = field(default_factory=list)
    requested: int | None = None
    written: int = 0
    #: Records generated before the filters (``written`` + rejected + failed, usually).
    candidates: int | None = None
    #: Records rejected per filter column.
    rejected: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    #: ``written / candidates`` when not given.
    acceptance_rate: float | None = None
    #: The validation release gate's result (rules, status), as JSON.
    gate: dict[str, Any] | None = None
    seed: int | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    task_categories: list[str] = field(default_factory=lambda: ["text-generation"])
    export: ExportSpec | None = None

    def acceptance(self) -> float | None:
        if self.acceptance_rate is not None:
            return self.acceptance_rate
        return self.written / self.candidates if self.candidates else None


def models_of(records: Iterable[Record]) -> list[str]:
    """Every model that made a record: ``provenance.model`` and, where provenance has them,
    the models of its per-cell entries (``provenance.cells``, a list or a mapping)."""
    models: set[str] = set()
    for record in records:
        models.update(_models(record))
    return sorted(models)


def _models(record: Record) -> Iterator[str]:
    if record.provenance.model:
        yield record.provenance.model
    cells = getattr(record.provenance, "cells", None) or ()
    for cell in cells.values() if isinstance(cells, Mapping) else cells:
        model = cell.get("model") if isinstance(cell, Mapping) else getattr(cell, "model", None)
        if isinstance(model, str) and model:
            yield model


class CardFacts:
    """What the records alone say on a card, gathered as they stream past (a large export
    is never held to be counted)."""

    def __init__(self) -> None:
        self.first: Record | None = None
        self.models: set[str] = set()
        self.count = 0

    def see(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            self.first = self.first or record
            self.models.update(_models(record))
            self.count += 1
            yield record

    def card(self, *, export: ExportSpec | None = None) -> DatasetCard:
        """The card the records make: id and version of their recipe, models, count."""
        first = self.first.provenance if self.first else None
        return DatasetCard(
            id=first.template_id if first else "dataset",
            version=first.template_version if first else "",
            models=sorted(self.models),
            written=self.count,
            export=export,
        )


def card_from_records(
    records: Iterable[Record], *, export: ExportSpec | None = None
) -> DatasetCard:
    """The card the records alone make: id and version of their recipe, models, count."""
    facts = CardFacts()
    for _ in facts.see(records):
        pass
    return facts.card(export=export)


def size_category(count: int) -> str:
    """The Hub's ``size_categories`` value for ``count`` rows."""
    names = ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M"]
    names += ["100M<n<1B", "1B<n<10B", "10B<n<100B", "100B<n<1T"]
    for power, name in enumerate(names, start=3):
        if count < 10**power:
            return name
    return "n>1T"


def render_card(card: DatasetCard) -> str:
    """``README.md`` of an export: YAML front matter (the Hub's and ``datasets``' metadata),
    then what made the dataset."""
    meta = {
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": DATA_GLOB}]}
        ],
        "task_categories": card.task_categories,
        "size_categories": [size_category(card.written)],
        "tags": ["synthetic", "textnlp"],
        "pretty_name": card.id,
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    title = f"{card.id} (version {card.version})" if card.version else card.id
    lines = [f"---\n{front}---", "", f"# {title}", "", CARD_MARKER, ""]
    if card.description:
        lines += [card.description.strip(), ""]
    lines += [f"Synthetic data made by TextNLP from the {card.kind} `{card.id}`.", ""]
    lines += _counts_table(card)
    if card.models:
        lines += ["## Models", "", *(f"- `{m}`" for m in card.models), ""]
    if card.rejected:
        lines += ["## Rejected by filter", "", "| filter | records |", "| --- | --- |"]
        lines += [f"| `{name}` | {count} |" for name, count in sorted(card.rejected.items())]
        lines += [""]
    if card.gate is not None:
        gate = json.dumps(card.gate, indent=2, ensure_ascii=False, default=str)
        lines += ["## Validation gate", "", "```json", gate, "```", ""]
    lines += _format_section(card.export)
    return "\n".join(lines)


def _counts_table(card: DatasetCard) -> list[str]:
    rate = card.acceptance()
    items: list[tuple[str, object]] = [
        ("Records written", card.written),
        ("Requested", card.requested),
        ("Candidates", card.candidates),
        ("Rejected", sum(card.rejected.values()) if card.rejected else None),
        ("Failed", card.failed or None),
        ("Acceptance rate", f"{rate:.1%}" if rate is not None else None),
        ("Seed", card.seed),
        ("Created", card.created_at),
    ]
    rows = [f"| {name} | {value} |" for name, value in items if value is not None]
    return ["| | |", "| --- | --- |", *rows, ""]


def _format_section(export: ExportSpec | None) -> list[str]:
    lines = [
        "## Format",
        "",
        "One row per record: `index`, `text` (the output), one field per column, "
        "`provenance` (JSON: model, parameters, seed, tokens) and `_textnlp` (JSON: the record "
        "as TextNLP reads it back).",
    ]
    if export and export.messages:
        lines.append("`messages` is the record as a chat: `[{role, content}, ...]`.")
    if export and export.preference:
        lines.append(
            "`prompt`, `chosen` and `rejected` are a preference pair in TRL's conversational "
            "format (lists of `{role, content}`)."
        )
    lines += [
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'dataset = load_dataset("path/to/this/directory", split="train")',
        "```",
        "",
    ]
    return lines


def write_card(directory: Path, card: DatasetCard) -> None:
    """Replace the card of an export directory atomically."""
    if not is_export(directory):
        raise OutputError(f"{directory} is not a textnlp export directory")
    with atomic_file(directory / CARD_NAME) as handle:
        handle.write(render_card(card))


__all__ = [
    "DatasetCard",
    "CardFacts",
    "card_from_records",
    "models_of",
    "render_card",
    "size_category",
    "write_card",
]
