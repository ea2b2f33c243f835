"""A job's records and validation report, as people look at them (the console's dataset viewer).

Records live in the database (``job_records``, the workers' checkpoint), and finished jobs keep
them there; the result file in storage holds the accepted ones again. A page is read from the
database, or from the result file when the database holds none of the job's records (a job
whose rows were cleared, a job imported with its file only).

Two ways to page:

* **by position** (``offset``; ``?page=`` in the console): a filter the database can apply alone
  (none, or ``status=ok``, on the ``ok`` column) is one ``LIMIT``/``OFFSET`` query on the
  primary key, so the first page of a 100k-record job reads 51 rows;
* **by cursor** (``after``: the index of the last record of the previous page): filters on the
  payload (label, failure reason, text search, ``failed``/``rejected``) read the records in
  index order, in growing batches, and stop as soon as a page of matches is found, or after
  ``SCAN_BUDGET`` records (the page then says how far it looked, and the next request goes on
  from there). A raw-payload check keeps the JSON parse for records that may match.
"""

from __future__ import annotations

import codecs
import csv
import json
import shutil
import tempfile
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from textnlp.adapters.db.job_store import JobStore
from textnlp.adapters.db.jobs import JobRow
from textnlp.adapters.storage import BlobStorage, Keys
from textnlp.domain import Record
from textnlp.domain.records import RecordStatus
from textnlp.errors import NotFound
from textnlp.services.job_models import JobView
from textnlp.validation.gate import Gate
from textnlp.validation.models import DatasetReport

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: Records a payload filter looks at in one request before it answers with what it found.
SCAN_BUDGET = 20_000
#: First and largest batch of a payload scan (the first page of a common match is cheap).
FIRST_BATCH, MAX_BATCH = 200, 2_000
MAX_FILTER_LENGTH = 200

RecordSource = Literal["database", "result file"]


def label_text(value: Any) -> str:
    """A label's value as a person types it (``true``, ``4``, ``positive``)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _digits(text: str) -> bool:
    return any(c.isdigit() for c in text)


def _needle(text: str) -> str | None:
    """``text`` case-folded when it appears verbatim in a record's JSON payload wherever it is
    in a string field (no character JSON escapes), else None (no raw check possible)."""
    if any(c in '"\\' or c < " " for c in text):
        return None
    return text.casefold()


class RecordQuery(BaseModel):
    """Filters of a job's records; empty strings mean no filter (an HTML form's blank field).

    ``label``: ``name=value`` (a variable, the labels of a record) or a bare ``value`` (any
    variable), compared without case; ``reason``: a piece of the failure reason, ``search``: a
    piece of the text, both without case.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: RecordStatus | None = None
    label: str | None = Field(default=None, max_length=MAX_FILTER_LENGTH)
    reason: str | None = Field(default=None, max_length=MAX_FILTER_LENGTH)
    search: str | None = Field(default=None, max_length=MAX_FILTER_LENGTH)

    @field_validator("status", "label", "reason", "search", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and (not value.strip() or value == "all"):
            return None
        return value.strip() if isinstance(value, str) else value

    @property
    def on_payload(self) -> bool:
        """Whether a filter needs the record itself (the database's ``ok`` column is not enough)."""
        return bool(
            self.label or self.reason or self.search or self.status in {"failed", "rejected"}
        )

    @property
    def ok_column(self) -> bool | None:
        """The ``ok`` column's value every match has (None: either)."""
        if self.status == "ok":
            return True
        if self.status in {"failed", "rejected"} or self.reason:
            return False
        return None

    def needles(self) -> list[str]:
        """Case-folded strings every matching record's raw JSON contains (a cheap pre-check)."""
        found = [_needle(t) for t in (self.search, self.reason) if t]
        if self.label:
            name, sep, value = self.label.partition("=")
            if sep:
                found.append(_needle(name.strip()))  # a name is a JSON key: a string
            # A value is a string, true/false/null or a number, which JSON may spell
            # differently (1e20, 1e+20): no raw check of values with digits.
            word = value.strip() if sep else self.label
            if not _digits(word):
                found.append(_needle(word))
        return [n for n in found if n]

    def may_match(self, payload: str) -> bool:
        needles = self.needles()
        if not needles:
            return True
        folded = payload.casefold()
        return all(n in folded for n in needles)

    def matches(self, record: Record) -> bool:
        if self.status is not None and record.status != self.status:
            return False
        if self.search and self.search.casefold() not in record.text.casefold():
            return False
        if self.reason and self.reason.casefold() not in (record.error or "").casefold():
            return False
        return not self.label or self._label_matches(record.variables)

    def _label_matches(self, variables: dict[str, Any]) -> bool:
        assert self.label is not None
        name, sep, value = self.label.partition("=")
        if not sep:
            wanted = self.label.casefold()
            return any(label_text(v).casefold() == wanted for v in variables.values())
        name, wanted = name.strip().casefold(), value.strip().casefold()
        return any(
            k.casefold() == name and label_text(v).casefold() == wanted
            for k, v in variables.items()
        )

    def params(self) -> dict[str, str]:
        """The query as URL parameters (only the filters set)."""
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


@dataclass(frozen=True)
class RecordPage:
    """One page of a job's records and how to get the next one."""

    records: list[Record]
    query: RecordQuery
    limit: int
    #: Where the records came from; None when the job has none stored anywhere yet.
    source: RecordSource | None
    #: Paging by position: the first record's position among the matches (None: by cursor).
    offset: int | None = None
    #: Paging by cursor: this page holds matches after this record index.
    after: int | None = None
    #: A next page may exist: by position, ``offset + limit``; by cursor, ``after=next_after``.
    has_more: bool = False
    next_after: int | None = None
    #: By cursor: the scan stopped on its budget before it found a full page; it looked at the
    #: records up to this index (the next request goes on from there).
    scanned_to: int | None = None
    #: The job (``JobService.records_page`` sets it: a page shows whose records they are).
    job: JobView | None = None

    @property
    def by_cursor(self) -> bool:
        return self.offset is None


@dataclass(frozen=True)
class JobReport:
    """A job's validation report, where it has one."""

    job: JobView
    #: The gate the job was submitted with (None: no validation asked for).
    gate: Gate | None
    report: DatasetReport | None
    key: str | None = None
    #: Why a stored report could not be shown.
    problem: str | None = None


class JobRecords:
    """Reads of a job's records and report (the caller has checked who may see the job)."""

    def __init__(self, store: JobStore, storage: BlobStorage) -> None:
        self.store = store
        self.storage = storage

    # -- records ---------------------------------------------------------------------------
    def page(
        self,
        row: JobRow,
        query: RecordQuery,
        *,
        offset: int = 0,
        after: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> RecordPage:
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        offset = max(0, offset)
        by_cursor = query.on_payload or after is not None
        start = -1 if after is None else after
        if not by_cursor:
            found = self.store.page_records(
                row.id, ok=query.ok_column, offset=offset, limit=limit + 1
            )
            if found or self.store.has_records(row.id):
                more = len(found) > limit
                return RecordPage(
                    found[:limit], query, limit, "database", offset=offset, has_more=more
                )
        else:
            with closing(self._stored(row.id, query.ok_column, start)) as stored:
                scanned = self._scan(stored, query, limit, "database", start)
            if scanned.records or scanned.has_more or self.store.has_records(row.id):
                return scanned
        # None in the database (only then is the file read: it holds the accepted ones again).
        if row.result_key and self.storage.exists(row.result_key):
            fmt = str(row.spec.get("format", "jsonl"))
            # Closed as soon as the page is full (a Parquet file's local copy goes with it).
            with closing(self._from_file(row.result_key, fmt)) as source:
                if by_cursor:
                    return self._scan(source, query, limit, "result file", start)
                return self._positioned(source, query, limit, offset)
        return RecordPage([], query, limit, None, offset=None if by_cursor else offset, after=after)

    def _stored(self, job_id: str, ok: bool | None, after: int) -> Generator[tuple[int, str]]:
        batch_size = FIRST_BATCH
        while True:
            batch = self.store.scan_records(job_id, ok=ok, after=after, limit=batch_size)
            yield from batch
            if len(batch) < batch_size:
                return
            after = batch[-1][0]
            batch_size = min(batch_size * 2, MAX_BATCH)

    def _scan(
        self,
        source: Iterator[tuple[int, str]],
        query: RecordQuery,
        limit: int,
        where: RecordSource,
        after: int,
    ) -> RecordPage:
        found: list[Record] = []
        looked = 0
        for index, payload in source:
            if index <= after:
                continue  # a result file is read from its start
            looked += 1
            if query.may_match(payload):
                record = Record.model_validate_json(payload)
                if query.matches(record):
                    found.append(record)
                    if len(found) == limit:
                        return RecordPage(
                            found, query, limit, where, after=after, has_more=True, next_after=index
                        )
            if looked >= SCAN_BUDGET:
                return RecordPage(
                    found,
                    query,
                    limit,
                    where,
                    after=after,
                    has_more=True,
                    next_after=index,
                    scanned_to=index,
                )
        return RecordPage(found, query, limit, where, after=after, scanned_to=None, next_after=None)

    def _positioned(
        self, source: Iterator[tuple[int, str]], query: RecordQuery, limit: int, offset: int
    ) -> RecordPage:
        found: list[Record] = []
        seen = 0
        for _, payload in source:
            record = Record.model_validate_json(payload)
            if not query.matches(record):
                continue
            seen += 1
            if seen <= offset:
                continue
            if len(found) == limit:
                return RecordPage(found, query, limit, "result file", offset=offset, has_more=True)
            found.append(record)
        return RecordPage(found, query, limit, "result file", offset=offset)

    def _from_file(self, key: str, fmt: str) -> Generator[tuple[int, str]]:
        """(index, record JSON) of a job's result file, streamed where the format allows."""
        from textnlp.generation.row_spool import json_text_columns
        from textnlp.generation.writers import unflatten
        from textnlp.tabular import allow_long_csv_fields

        if fmt == "jsonl":
            lines = codecs.iterdecode(_lines(self.storage.open_read(key)), "utf-8")
            for line in lines:
                if line.strip():
                    yield int(json.loads(line)["index"]), line
            return
        if fmt == "csv":
            text = codecs.iterdecode(_lines(self.storage.open_read(key)), "utf-8")
            allow_long_csv_fields()
            for flat in csv.DictReader(text):
                record = unflatten(flat, text=True)
                yield record.index, record.model_dump_json()
            return
        import pyarrow.parquet as pq

        workdir = Path(tempfile.mkdtemp(prefix="textnlp-records-"))
        try:
            local = workdir / "records.parquet"
            self.storage.download(key, local)
            parquet = pq.ParquetFile(local)
            mixed = json_text_columns(parquet.schema_arrow)
            for batch in parquet.iter_batches(batch_size=1000):
                for flat in batch.to_pylist():
                    record = unflatten(flat, json_columns=mixed)
                    yield record.index, record.model_dump_json()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    # -- report ----------------------------------------------------------------------------
    def report(self, row: JobRow, view: JobView) -> JobReport:
        raw = row.spec.get("validation")
        gate = Gate.model_validate(raw) if isinstance(raw, dict) else None
        key = row.report_key
        if key is None and gate is not None and self.storage.exists(Keys.validation_result(row.id)):
            key = Keys.validation_result(row.id)  # stored, the job not finished with it yet
        if key is None:
            return JobReport(view, gate, None)
        try:
            report = DatasetReport.model_validate_json(self.storage.get_bytes(key))
        except NotFound:
            return JobReport(view, gate, None, key, f"the report {key} is missing from storage")
        except (ValidationError, ValueError) as exc:
            problem = f"the report {key} cannot be read: {type(exc).__name__}"
            return JobReport(view, gate, None, key, problem)
        return JobReport(view, gate, report, key)


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Whole lines out of storage chunks (a line may span chunks)."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest
