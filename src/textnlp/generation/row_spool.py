"""Flat rows on their way to a CSV or Parquet file, held on disk rather than in memory.

A table's columns (CSV) and their types (Parquet) are those of all its rows, known only once
the last row is seen, while a dataset can hold a million records: ``RowSpool`` keeps the rows
in a temporary file in chunks, and what the chunks say about the columns, so that the file is
then written chunk by chunk (Parquet in one row group per chunk) in memory bounded by a chunk.

A column's Parquet type is what Arrow infers from its values, as if the whole column were one
array: each chunk's inferred type is merged with the others' (``null`` takes any type, an
integer column with a float becomes ``double``, a struct takes the union of its fields), and a
column whose values have no one type (or one Parquet cannot store) is written as JSON text,
its field marked so (``JSON_TEXT_MARK``) that a reader decodes it (``json_text_columns``).
"""

from __future__ import annotations

import json
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

#: Rows per chunk: a chunk is the unit held in memory, and a Parquet file's row group.
CHUNK_ROWS = 10_000

#: A column written as JSON text (its values have no one Arrow type, or one Parquet cannot
#: store).
JSON_TEXT: Any = object()
#: The field metadata of a JSON-text column: its strings are JSON values, not text.
JSON_TEXT_MARK = {b"textnlp.encoding": b"json"}


class RowSpool:
    """Rows appended in order, read back in chunks; ``with`` it to remove its file."""

    def __init__(self, directory: Path | None = None, *, types: bool = False) -> None:
        """``types``: keep each column's Arrow type (for Parquet); ``directory``: where the
        spool's file goes (the output's, so it counts against the disk being written)."""
        # Closed by ``__exit__``: the spool outlives this call.
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115
            dir=directory, prefix=".textnlp-rows-"
        )
        self._chunk: list[dict[str, Any]] = []
        self._chunk_rows = CHUNK_ROWS
        self._types: dict[str, Any] | None = {} if types else None
        #: Every column, in the order rows first name them.
        self.columns: dict[str, None] = {}
        self.count = 0

    def __enter__(self) -> RowSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def extend(self, rows: Iterable[dict[str, Any]]) -> RowSpool:
        for row in rows:
            self._chunk.append(row)
            self.columns.update(dict.fromkeys(row))
            if len(self._chunk) >= self._chunk_rows:
                self._flush()
        self._flush()
        return self

    def _flush(self) -> None:
        if not self._chunk:
            return
        if self._types is not None:
            for name in self.columns:
                self._types[name] = merge_types(
                    self._types.get(name), chunk_type([row.get(name) for row in self._chunk])
                )
        pickle.dump(self._chunk, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += len(self._chunk)
        self._chunk = []

    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        """The rows again, a chunk at a time (a file this spool wrote: safe to unpickle)."""
        self._file.seek(0)
        for _ in range(-(-self.count // self._chunk_rows)):
            yield pickle.load(self._file)  # noqa: S301 - our own temporary file

    def arrow_type(self, name: str) -> Any:
        """The column's Arrow type (``null`` for a column no row has), or ``JSON_TEXT``."""
        import pyarrow as pa

        assert self._types is not None, "a spool made with types=True"
        kind = self._types.get(name)
        if kind is None:
            return pa.null()
        return kind if kind is JSON_TEXT or storable(kind) else JSON_TEXT


def chunk_type(values: list[Any]) -> Any:
    """The Arrow type Arrow infers for ``values`` (Parquet may not store it: a chunk of empty
    objects is ``struct<>`` until another chunk gives it fields), or ``JSON_TEXT``."""
    import pyarrow as pa

    try:
        return pa.array(values).type
    except (ValueError, TypeError, OverflowError, NotImplementedError):  # Arrow* errors
        return JSON_TEXT


def merge_types(seen: Any, chunk: Any) -> Any:
    """The type of a column whose values so far have type ``seen`` (None: no chunk yet) and
    whose next chunk has type ``chunk``."""
    import pyarrow as pa

    if seen is None:
        return chunk
    if seen is JSON_TEXT or chunk is JSON_TEXT:
        return JSON_TEXT
    if seen == chunk:
        return chunk
    try:
        merged = (
            pa.unify_schemas(
                [pa.schema([("c", seen)]), pa.schema([("c", chunk)])], promote_options="permissive"
            )
            .field("c")
            .type
        )
    except (ValueError, TypeError, NotImplementedError):  # ArrowInvalid, ArrowTypeError
        return JSON_TEXT
    return merged


def storable(arrow_type: Any) -> bool:
    """Parquet stores no struct without fields (an empty object in every row)."""
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        fields = [arrow_type.field(i).type for i in range(arrow_type.num_fields)]
        return bool(fields) and all(storable(t) for t in fields)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return storable(arrow_type.value_type)
    return True


def json_text(values: list[Any]) -> Any:
    import pyarrow as pa

    return pa.array(
        [None if v is None else json.dumps(v, ensure_ascii=False) for v in values],
        type=pa.string(),
    )


def json_text_columns(schema: Any) -> list[str]:
    """The columns of a Parquet file's Arrow ``schema`` written as JSON text."""
    return [
        f.name
        for f in schema
        if f.metadata and all(f.metadata.get(k) == v for k, v in JSON_TEXT_MARK.items())
    ]


def write_parquet(
    handle: IO[bytes],
    spool: RowSpool,
    columns: Iterable[str],
    *,
    fixed: dict[str, Any] | None = None,
) -> None:
    """The spool's rows as one Parquet table of ``columns``; ``fixed`` types some of them (an
    export's)."""
    fixed = fixed or {}
    types = {name: fixed[name] if name in fixed else spool.arrow_type(name) for name in columns}
    while True:
        try:
            _write_chunks(handle, spool, types)
            return
        except _Mismatch as mismatch:  # a merged type one chunk's values do not fit
            types[mismatch.column] = JSON_TEXT
            handle.seek(0)
            handle.truncate()


class _Mismatch(Exception):
    def __init__(self, column: str) -> None:
        self.column = column


def _write_chunks(handle: IO[bytes], spool: RowSpool, types: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            pa.field(name, pa.string(), metadata=JSON_TEXT_MARK)
            if kind is JSON_TEXT
            else pa.field(name, kind)
            for name, kind in types.items()
        ]
    )
    with pq.ParquetWriter(handle, schema) as writer:
        for rows in spool.chunks():
            arrays = []
            for name, kind in types.items():
                values = [row.get(name) for row in rows]
                if kind is JSON_TEXT:
                    arrays.append(json_text(values))
                    continue
                try:
                    arrays.append(pa.array(values, type=kind))
                except (ValueError, TypeError, OverflowError, NotImplementedError):
                    raise _Mismatch(name) from None
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
