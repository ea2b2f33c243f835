"""Export for training: the rows of a directory ``datasets.load_dataset(path)`` reads.

The ``export:`` section of a recipe (``ExportSpec``) says which columns make the chat
``messages`` of a record, or its preference pair::

    export:
      messages: chat                          # a dialogue column, already [{role, content}, ...]
    export:
      messages:                               # or one conversation built from columns
        - {role: system, column: persona}
        - {role: user, column: instruction}
        - {role: assistant, column: response}
    export:                                   # TRL's conversational preference format
      prompt: question
      chosen: good_answer
      rejected: bad_answer

The directory (format ``"hf"`` of ``writers``)::

    DIR/README.md                             the dataset card (``card``)
    DIR/data/train-00000-of-00001.parquet     one row per record (``training_row``)

A row holds ``index``, ``text``, every column of the record at top level (nested values as
nested Arrow structs and lists), ``messages`` / ``prompt`` ``chosen`` ``rejected`` when the
spec asks for them, ``provenance`` (JSON text) and ``_textnlp`` (JSON text: the record's
``variables``, ``data``, ``status`` and ``error``). Decisions:

* ``_textnlp`` duplicates the columns on purpose: Arrow unifies a column's types across rows
  (struct keys missing in one row come back as ``None``, ints beside floats become floats), so
  the top-level columns are the training view and ``_textnlp`` is what ``read_export`` rebuilds
  ``Record``s from, exactly (a resume from a finished export gets its records back unchanged).
* A column whose values have no common Arrow type (a string in one row, an object in another),
  or that Parquet cannot store (an empty object), is written as JSON text instead.
* ``messages``, ``prompt``, ``chosen`` and ``rejected`` replace a same-named column in the row
  (``prompt: prompt`` is the natural spelling); the column's own value stays in ``_textnlp``.
  A column named ``index``, ``provenance`` or ``_textnlp`` (``RESERVED_COLUMNS``), or a ``text``
  column whose value is not the record's text, has no place in a row: ``DatasetError``. A
  recipe loader should refuse such names before any model runs.
* Content that is not text (a structured column, a number) enters a message as JSON text.
* No records make a valid export that ``read_export`` reads back, but ``datasets`` refuses an
  empty split (its own limit): nothing to train on either way.

Writes are atomic: the directory is built beside the target (``.NAME.XXXX.tmp``), then the old
directory is renamed away, the new one renamed in, and the old one deleted; a failed or refused
write leaves the target as it was. An existing directory is replaced only when it is empty or
a previous export (its ``README.md`` carries ``CARD_MARKER``) that holds only the card and its
data files: a user's unrelated directory, or files they added inside an export, are never
deleted (``OutputError``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from textnlp.domain import Record
from textnlp.errors import DatasetError, OutputError
from textnlp.generation.row_spool import RowSpool, write_parquet
from textnlp.generation.writers import usual_mode

if TYPE_CHECKING:
    from textnlp.generation.card import DatasetCard

#: In the card's body (an HTML comment, invisible on the Hub): what makes a directory ours.
CARD_MARKER = "<!-- textnlp-dataset-export -->"
CARD_NAME = "README.md"
DATA_FILE = "data/train-00000-of-00001.parquet"
DATA_GLOB = "data/train-*.parquet"
#: The row's own fields, which no recipe column may be named (``text`` only as the output).
RESERVED_COLUMNS = frozenset({"index", "provenance", "_textnlp"})
PREFERENCE_FIELDS = ("prompt", "chosen", "rejected")

Role = Literal["system", "user", "assistant"]


class MessageSpec(BaseModel):
    """One message of a conversation built from columns."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    column: str = Field(min_length=1)


class ExportSpec(BaseModel):
    """The ``export:`` section of a recipe: how a record becomes a chat training example.

    ``messages`` and a preference triple may both be given (each makes its own fields).
    """

    model_config = ConfigDict(extra="forbid")

    messages: str | list[MessageSpec] | None = None
    prompt: str | None = None
    chosen: str | None = None
    rejected: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> ExportSpec:
        given = [name for name in PREFERENCE_FIELDS if getattr(self, name) is not None]
        if given and len(given) != len(PREFERENCE_FIELDS):
            missing = ", ".join(n for n in PREFERENCE_FIELDS if n not in given)
            raise ValueError(
                f"a preference pair needs prompt, chosen and rejected; {missing} missing"
            )
        if self.messages == "" or self.messages == []:
            raise ValueError("messages names a dialogue column or lists {role, column} entries")
        for name in PREFERENCE_FIELDS:
            if getattr(self, name) == "":
                raise ValueError(f"{name} names a column")
        return self

    @property
    def preference(self) -> bool:
        return self.prompt is not None

    def references(self) -> set[str]:
        """The columns this section names (a recipe loader checks they exist)."""
        names: set[str] = set()
        if isinstance(self.messages, str):
            names.add(self.messages)
        elif self.messages:
            names.update(m.column for m in self.messages)
        names.update(n for n in (self.prompt, self.chosen, self.rejected) if n is not None)
        return names

    def fields(self) -> list[str]:
        """The fields this section adds to a training row."""
        return (["messages"] if self.messages else []) + (
            list(PREFERENCE_FIELDS) if self.preference else []
        )


def columns_of(record: Record) -> dict[str, Any]:
    """A record's columns by name, as JSON values (llm columns win over variables)."""
    dumped = record.model_dump(mode="json", include={"variables", "data"})
    return {**dumped["variables"], **(dumped["data"] or {})}


def training_row(record: Record, export: ExportSpec | None = None) -> dict[str, Any]:
    """The flat row of ``record`` in a training file (see the module docstring)."""
    columns = columns_of(record)
    produced = export.fields() if export else []
    row: dict[str, Any] = {"index": record.index, "text": record.text}
    for name, value in columns.items():
        if name in produced:
            continue
        if name in RESERVED_COLUMNS or (name == "text" and value != record.text):
            raise DatasetError(
                f"column {name!r} of record {record.index} clashes with the row's own {name!r} "
                "field; rename the column"
            )
        row[name] = value
    if export is not None:
        row.update(_conversations(export, columns, record.index))
    row["provenance"] = record.provenance.model_dump_json()
    meta = record.model_dump(mode="json", include={"variables", "data", "status", "error"})
    row["_textnlp"] = json.dumps(meta, ensure_ascii=False)
    return row


def _conversations(export: ExportSpec, columns: Mapping[str, Any], index: int) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if isinstance(export.messages, str):
        value = _value(columns, export.messages, index)
        fields["messages"] = _conversation(value, export.messages, index, default_role=None)
    elif export.messages:
        fields["messages"] = [
            {"role": m.role, "content": _content(_value(columns, m.column, index), m.column, index)}
            for m in export.messages
        ]
    if export.prompt and export.chosen and export.rejected:
        for name, column, role in (
            ("prompt", export.prompt, "user"),
            ("chosen", export.chosen, "assistant"),
            ("rejected", export.rejected, "assistant"),
        ):
            value = _value(columns, column, index)
            fields[name] = _conversation(value, column, index, default_role=role)
    return fields


def _value(columns: Mapping[str, Any], column: str, index: int) -> Any:
    if column not in columns:
        raise DatasetError(f"record {index} has no column {column!r} (named by export)")
    return columns[column]


def _conversation(value: Any, column: str, index: int, *, default_role: str | None) -> Any:
    """A conversation column as ``[{role, content}]``; with ``default_role``, a plain value
    becomes one message of that role (a preference field's text)."""
    if isinstance(value, list):
        messages = []
        for message in value:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                break
            messages.append(
                {
                    "role": message["role"],
                    "content": _content(message.get("content"), column, index),
                }
            )
        else:
            return messages
    if default_role is None:
        raise DatasetError(
            f"column {column!r} of record {index} is not a conversation ([{{role, content}}, ...])"
        )
    return [{"role": default_role, "content": _content(value, column, index)}]


def _content(value: Any, column: str, index: int) -> str:
    if value is None:
        raise DatasetError(f"column {column!r} of record {index} is empty")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# -- the directory ---------------------------------------------------------------------------


def is_export(path: Path) -> bool:
    """Whether ``path`` is a directory an earlier export wrote (its card has the marker)."""
    card = path / CARD_NAME
    try:
        with card.open(encoding="utf-8", errors="replace") as handle:
            return CARD_MARKER in handle.read(1 << 20)
    except OSError:
        return False


def check_export_target(path: Path) -> None:
    """Refuse a target that is a file or a user's directory (one that is neither empty nor an
    earlier export), or an earlier export that holds files it did not write (the export is
    replaced whole): ``OutputError``, before anything is written."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"output path {path} is a file, not a dataset directory")
    if not path.is_dir():
        return
    try:
        if not is_export(path):
            if next(path.iterdir(), None) is not None:
                raise OutputError(
                    f"output directory {path} is not empty and holds no textnlp export; "
                    "choose a new or empty directory"
                )
            return
        foreign = _foreign_entries(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise OutputError(
            f"output directory {path} holds files textnlp did not write ({shown}), which "
            "replacing the export would delete; move them or choose another directory"
        )


def _foreign_entries(path: Path) -> list[str]:
    """What is in an export directory besides its card and its data files."""
    foreign = [
        entry.name + ("/" if entry.is_dir() else "")
        for entry in sorted(path.iterdir())
        if entry.name not in {CARD_NAME, "data"}
    ]
    data = path / "data"
    if data.is_dir() and not data.is_symlink():
        ours = set(path.glob(DATA_GLOB))
        foreign += [
            f"data/{entry.name}" + ("/" if entry.is_dir() else "")
            for entry in sorted(data.iterdir())
            if entry not in ours or not entry.is_file() or entry.is_symlink()
        ]
    elif data.exists():
        foreign.append("data")
    return foreign


def write_export(
    path: Path,
    records: Iterable[Record],
    *,
    export: ExportSpec | None = None,
    card: DatasetCard | None = None,
) -> int:
    """Write ``records`` as an export directory at ``path`` atomically; returns the count.
    ``records`` are streamed: the rows wait on disk (``row_spool``), not in memory.

    ``card`` defaults to ``card_from_records`` (what the records alone say)."""
    # ``card`` imports this module for the spec and the layout; imported here, no cycle.
    from textnlp.generation.card import CardFacts, render_card
    from textnlp.generation.writers import spooled

    check_export_target(path)
    parent = path.parent
    facts = CardFacts()
    rows = (training_row(r, export) for r in facts.see(records))
    with spooled(path, rows, types=True) as spool:
        card = card or facts.card(export=export)
        try:
            build = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp"))
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}") from None
        try:
            build.chmod(usual_mode(directory=True))  # mkdtemp's 0700 would hide the dataset
            _write_parquet(build / DATA_FILE, spool, export)
            (build / CARD_NAME).write_text(render_card(card), encoding="utf-8")
            _swap_in(build, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(build, ignore_errors=True)
        return spool.count


def read_export(path: Path) -> Iterator[Record]:
    """The records of an export directory, exactly as they were written, one by one."""
    import pyarrow.parquet as pq

    files = sorted(path.glob(DATA_GLOB))
    if not files:
        raise DatasetError(f"{path} holds no {DATA_GLOB}: not a textnlp export")
    for file in files:
        batches = pq.ParquetFile(file).iter_batches(
            columns=["index", "text", "provenance", "_textnlp"]
        )
        for batch in batches:
            for row in batch.to_pylist():
                yield Record.model_validate(
                    {
                        "index": row["index"],
                        "text": row["text"],
                        **json.loads(row["_textnlp"]),
                        "provenance": json.loads(row["provenance"]),
                    }
                )


def _write_parquet(file: Path, spool: RowSpool, export: ExportSpec | None) -> None:
    """The spool's rows as the export's Parquet file: the fixed fields typed, the columns
    inferred (JSON text when they cannot be, see the module docstring)."""
    import pyarrow as pa

    messages = pa.list_(pa.struct([(n, pa.string()) for n, _ in _MESSAGE_LIST_FIELDS]))
    fixed: dict[str, Any] = {"index": pa.int64(), "text": pa.string()}
    for name in export.fields() if export else []:
        fixed[name] = messages
    fixed.update(provenance=pa.string(), _textnlp=pa.string())
    names = dict.fromkeys(["index", "text", *spool.columns, *fixed])
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("wb") as handle:
        write_parquet(handle, spool, names, fixed=fixed)
        handle.flush()
        os.fsync(handle.fileno())


def _swap_in(build: Path, target: Path) -> None:
    """Rename ``build`` to ``target``; an old ``target`` is renamed away first, put back if the
    rename fails, and deleted after."""
    if not target.exists():
        build.rename(target)
        return
    holder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    old = holder / target.name
    try:
        target.rename(old)
    except OSError:
        holder.rmdir()
        raise
    try:
        build.rename(target)
    except OSError:
        old.rename(target)  # should this fail too, the old export stays in ``holder``
        holder.rmdir()
        raise
    shutil.rmtree(holder, ignore_errors=True)


_MESSAGE_LIST_FIELDS = [("role", "string"), ("content", "string")]


__all__ = [
    "CARD_MARKER",
    "CARD_NAME",
    "DATA_GLOB",
    "RESERVED_COLUMNS",
    "ExportSpec",
    "MessageSpec",
    "check_export_target",
    "columns_of",
    "is_export",
    "read_export",
    "training_row",
    "write_export",
]
