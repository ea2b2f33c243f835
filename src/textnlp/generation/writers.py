"""Dataset files: JSONL, CSV and Parquet, chosen by the file's extension, and export
directories that Hugging Face ``datasets.load_dataset`` reads (``textnlp.generation.export``).

JSONL keeps each ``Record`` as nested JSON. CSV and Parquet are flat: ``index``, ``text``,
``data`` (the parsed JSON output, as a JSON string), one ``variables.<name>`` column per variable
and one ``provenance.<field>`` column per provenance field (``params`` as JSON).

An output path without an extension (``-o out/``, ``-o out/persona-qa``), or an existing
directory that holds an earlier export's card, is an export directory (format ``"hf"``): Parquet
under ``data/`` and a dataset card, ``README.md``; only ``write_dataset``'s ``export`` (the chat
``messages`` or a preference pair) shapes it, the file formats ignore it.

Writes are atomic: a file is written beside the target and renamed over it, so an existing
dataset is never half-overwritten; it keeps the old file's permissions, and a symbolic link
(the user's own) is written through, its target replaced and the link kept. An export
directory is built beside the target and swapped in, and a user's non-empty directory that
holds no export is refused, never overwritten.

An output's directory must exist, except below the working directory: a relative path without
``..`` may name new directories (``-o out/data.jsonl``), created when the run starts. A mistyped
absolute path (``/nonexistent-dir/x.jsonl``) is refused rather than grown into a directory tree.
Whether the directory takes files is tried for real (a file created and removed), since
permission bits say nothing about ``/proc`` or a read-only mount.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from textnlp.domain import Record
from textnlp.errors import DatasetError, OutputError, first_error
from textnlp.generation.row_spool import RowSpool, json_text_columns, write_parquet
from textnlp.tabular import allow_long_csv_fields

if TYPE_CHECKING:
    from textnlp.generation.export import ExportSpec

Format = Literal["jsonl", "csv", "parquet", "hf"]
#: By extension; ``""`` (none) is an export directory.
FORMATS: dict[str, Format] = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", "": "hf"}


def output_path(named: str | Path) -> Path:
    """The output a user named, as a path: a name spelled as a directory (``ds/``) must be one
    a directory can have, as ``Path`` drops the ``/`` (``out.jsonl/`` would become a file)."""
    text = str(named)
    if not text.strip():
        raise OutputError("the output path is empty")
    if isinstance(named, str) and text.endswith(("/", os.sep)) and Path(text).suffix:
        raise OutputError(
            f"{text} is spelled as a directory but named as a file ({Path(text).suffix}): "
            f"name a directory without an extension, or drop the '/' for a file"
        )
    return Path(named)


def home_expanded(path: str | Path) -> str | Path:
    """``~/x`` as a shell would read it (a name spelled ``ds/`` keeps its ``/``): the
    library's paths, and the CLI's given as ``--out=~/x``, where no shell expands it."""
    if isinstance(path, str):
        return os.path.expanduser(path)  # noqa: PTH111 - a Path would drop the "/"
    return path.expanduser()


def format_of(path: Path | str) -> Format:
    """The format of an output path: its extension's; ``"hf"`` for a path without one, a path
    spelled with a trailing ``/``, an existing directory with another extension
    (``out.v2/``), and an existing earlier export whatever its name."""
    from textnlp.generation.export import is_export

    if isinstance(path, str) and path.endswith(("/", os.sep)):
        return "hf"
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() and (suffix not in FORMATS or is_export(path)):
        return "hf"
    try:
        return FORMATS[suffix]
    except KeyError:
        known = ", ".join(s for s in FORMATS if s)
        raise OutputError(
            f"unknown output format {suffix!r} for {path}; use {known}, "
            "or a directory (no extension) for a Hugging Face dataset"
        ) from None


def check_writable(path: Path) -> Format:
    """Fail early (before any model runs) when ``path`` cannot hold a dataset."""
    fmt = format_of(path)
    path = Path(path)
    if fmt == "hf":
        from textnlp.generation.export import check_export_target

        check_export_target(path)
        _probe(path, str(path))
    else:
        check_file_writable(path)
    return fmt


def check_file_writable(path: Path, noun: str = "") -> None:
    """``path`` can be written as a file: not a directory, its directory there (never made
    from a typo), and a file really made beside it. ``noun`` (a report...) names it in the
    one-line refusal."""
    if path.is_dir():
        raise OutputError(f"{noun or 'output path'} {path} is a directory")
    _probe(path, f"{noun} {path}" if noun else str(path))


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: another spelling (``./x``, ``../dir/x``), a
    symbolic or a hard link. A path that does not exist yet is compared by where it resolves."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:  # gone between the two calls, or unreadable: not shown to be the same
        return False


def _probe(path: Path, named: str) -> None:
    """Its directory exists and takes a new file, tried for real: permission bits say nothing
    about /proc or a read-only mount."""
    parent = ensure_directory(path)
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {named}: permission denied")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        raise OutputError(f"cannot write {named}: {exc.strerror}") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def ensure_directory(path: Path) -> Path:
    """The directory of ``path``, created only when it lies below the working directory."""
    parent = path.parent if str(path.parent) else Path()
    for ancestor in (parent, *parent.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise OutputError(f"cannot write {path}: {ancestor} is not a directory")
    if parent.is_dir():
        return parent
    if parent.is_absolute() or ".." in parent.parts:
        raise OutputError(f"cannot write {path}: directory {parent} does not exist")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {parent}: {exc.strerror}") from None
    return parent


def flatten(record: Record, *, text: bool = False) -> dict[str, Any]:
    """A record as one flat row. ``text``: for a table of text cells (CSV), where an object or
    a list variable is JSON text (``unflatten(..., text=True)`` reads it back), not Python's
    ``repr``."""
    row: dict[str, Any] = {
        "index": record.index,
        "text": record.text,
        "data": json.dumps(record.data, ensure_ascii=False) if record.data is not None else "",
    }
    for name, value in record.variables.items():
        if text and (isinstance(value, dict | list) or _read_as_other(value)):
            value = json.dumps(value, ensure_ascii=False)
        row[f"variables.{name}"] = value
    for name, value in record.provenance.model_dump(mode="json").items():
        row[f"provenance.{name}"] = json.dumps(value) if isinstance(value, dict) else value
    return row


def unflatten(
    row: dict[str, Any], *, text: bool = False, json_columns: Iterable[str] = ()
) -> Record:
    """``flatten``'s row as a record again. ``text``: a CSV row, whose object and list variables
    are JSON text; ``json_columns``: a Parquet file's columns of mixed values, written as JSON
    text (``json_text_columns``)."""
    row = dict(row)
    for name in json_columns:
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    variables = {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("variables.")}
    if text:
        variables = {name: _json_container(value) for name, value in variables.items()}
    provenance = {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("provenance.")}
    for name in ("params", "cells"):  # the JSON-text fields; CSV writes a missing one as ""
        if isinstance(provenance.get(name), str):
            provenance[name] = json.loads(provenance[name]) if provenance[name] else None
    data = row.get("data")
    return Record.model_validate(
        {
            "index": int(row["index"]),
            "text": row.get("text") or "",
            "data": json.loads(data) if data else None,
            "variables": variables,
            "provenance": provenance,
        }
    )


def _json_container(value: Any) -> Any:
    """A CSV cell as ``flatten`` wrote it: an object or a list as JSON text, and a text that
    would read as something else (``[1,2]``, or such a text in JSON quotes) as a JSON string;
    any other text as it is. So every variable reads back as it was written."""
    if not isinstance(value, str) or not value.startswith(("{", "[", '"')):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    if isinstance(decoded, dict | list):
        return decoded
    if isinstance(decoded, str) and _read_as_other(decoded):
        return decoded
    return value


def _read_as_other(value: Any) -> bool:
    """Whether a text variable written as it is would read back as something else."""
    return isinstance(value, str) and _json_container(value) != value


def usual_mode(*, directory: bool = False) -> int:
    """The mode a plain ``open`` or ``mkdir`` would give under the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def kept_mode(path: Path) -> int:
    """The mode a file rewritten at ``path`` keeps: the existing file's (a dataset made
    private with ``chmod 600`` stays private), else ``usual_mode``'s."""
    try:
        return stat.S_IMODE(path.stat().st_mode) & 0o777
    except OSError:
        return usual_mode()


def write_target(path: Path) -> Path:
    """The file a write of ``path`` replaces: a symbolic link's target, written through as
    the shell's ``>`` does (replacing the link would leave the file it names stale), when the
    link is the user's own; one of another user's (planted in a shared directory, pointing at
    a file of the user's) is refused."""
    try:
        if not path.is_symlink():
            return path
        if path.lstat().st_uid != os.geteuid():
            raise OutputError(
                f"{path} is a symbolic link of another user: not written through; "
                "remove it or write to another file"
            )
        return path.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a link loop (RuntimeError before Python 3.13)
        raise OutputError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (beside its target, for a symbolic link:
    ``write_target``); rename it over that file only on success. The file keeps its mode."""
    named, path = path, write_target(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {named}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        tmp.chmod(kept_mode(path))  # not mkstemp's 0600, which would hide a new dataset
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        # A file descriptor, not a path: Path.open cannot take it.
        with open(fd, mode, encoding=encoding, newline=newline) as handle:  # noqa: PTH123
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:  # a full disk, a vanished directory: the old file stays as it was
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {named}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_dataset(
    path: Path, records: Iterable[Record], *, export: ExportSpec | None = None
) -> int:
    """Write ``records`` to ``path`` atomically in the format of its extension (an export
    directory shaped by ``export``; the file formats ignore it). ``records`` may be an iterator
    of any length: they are streamed, and a flat table's rows wait on disk (``row_spool``)."""
    fmt = format_of(path)
    if fmt == "hf":
        from textnlp.generation.export import write_export

        return write_export(write_target(Path(path)), records, export=export)
    if fmt == "jsonl":
        count = 0
        with atomic_file(path) as handle:
            for record in records:
                handle.write(record.model_dump_json() + "\n")
                count += 1
        return count
    flat = (flatten(r, text=fmt == "csv") for r in records)
    with spooled(path, flat, types=fmt == "parquet") as spool:
        columns = list(spool.columns) or ["index", "text", "data"]
        if fmt == "csv":
            with atomic_file(path) as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                for rows in spool.chunks():
                    writer.writerows(rows)
        else:
            with atomic_file(path, "wb") as handle:
                write_parquet(handle, spool, columns)
        return spool.count


@contextmanager
def spooled(path: Path, rows: Iterable[dict[str, Any]], *, types: bool) -> Iterator[RowSpool]:
    """``rows`` in a ``RowSpool`` beside ``path`` (they count against the disk being written):
    a full disk is an ``OutputError``, and ``path`` is left as it was."""
    try:
        with RowSpool(path.parent, types=types) as spool:
            spool.extend(rows)
            yield spool
    except OSError as exc:  # the spool's own writes (``atomic_file`` maps those of ``path``)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_dataset(path: Path) -> list[Record]:
    """Records of a dataset this module wrote (for resume and reports)."""
    return list(iter_dataset(path))


def iter_dataset(path: Path) -> Iterator[Record]:
    """``read_dataset``'s records one by one, in the file's order: a large file is not held."""
    fmt = format_of(path)
    try:
        if fmt == "hf":
            from textnlp.generation.export import read_export

            yield from read_export(Path(path))
        elif fmt == "jsonl":
            # utf-8-sig: an editor or a spreadsheet may have started the file with a BOM.
            with path.open(encoding="utf-8-sig") as handle:
                for line in handle:
                    if line.strip():
                        yield Record.model_validate_json(line)
        elif fmt == "csv":
            allow_long_csv_fields()
            with path.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle)
                _check_columns(path, reader.fieldnames or [])
                for row in reader:
                    yield unflatten(row, text=True)
        else:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            _check_columns(path, parquet.schema_arrow.names)
            mixed = json_text_columns(parquet.schema_arrow)
            for batch in parquet.iter_batches():
                for row in batch.to_pylist():
                    yield unflatten(row, json_columns=mixed)
    except ValidationError as exc:  # a file of records of some other kind
        raise DatasetError(
            f"{path} is not a textnlp dataset: a record's {first_error(exc, root='line')}"
        ) from None
    except UnicodeDecodeError:
        raise DatasetError(f"cannot read dataset {path}: it is not UTF-8 text") from None
    except csv.Error as exc:  # csv's messages describe the problem, not the data
        raise DatasetError(f"cannot read dataset {path}: not valid CSV ({exc})") from None
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from None


def _check_columns(path: Path, columns: Sequence[str]) -> None:
    """A table this module wrote has ``index`` and ``text`` (a user's own CSV has not: resumed
    onto, it was read as no records, then replaced)."""
    missing = [name for name in ("index", "text") if name not in columns]
    if missing:
        raise DatasetError(
            f"{path} is not a textnlp dataset (no {' or '.join(map(repr, missing))} column)"
        )
