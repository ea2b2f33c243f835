"""OpenAI's Files and Batch APIs over TextNLP jobs (the use cases; the routes are in
``api.openai.files`` and ``api.openai.batches``).

The mapping, so that a client written for OpenAI's Batch API runs unchanged:

- **An input file** (purpose ``batch``) is the user's upload
  ``prompts/user-uploads/<owner>/file-<hex>.jsonl``, checked line by line when it arrives
  (``services.batch_requests``: a bad line is refused naming it, so a batch never starts on a
  file with a line that does not parse, names another url or model, or breaks a bound), with
  its description (``FileInfo``: name, size, time, endpoint, model) beside it as
  ``file-<hex>.json``. Its id is ``file-<hex>``, time-ordered (``services.list_cursor``: a
  list's page after a file deleted meanwhile starts where it was); the owner is part of the
  key, so another user's id names nothing (404). The upload (up to ``api.max_file_bytes``,
  OpenAI's 200 MB) arrives spooled to a temporary file; it is checked as a stream of chunks
  and streamed to storage, never held in memory whole.
- **A batch** is a job: id ``batch_<job id>``, ``prompt_file`` the input file, the file's
  model. Record ``i`` is the answer to request line ``i``, stored once by (job, index) through
  the job store, so a redelivered or restarted job never answers a line twice. What a job does
  not hold (endpoint, input file id, metadata) is kept in
  ``generated/batch-jobs/<job>/openai/batch.json``.
- **Status** follows the job: queued -> ``validating`` (the file was validated at upload and
  at create; the job waits for a worker), running -> ``in_progress`` (``finalizing`` once every
  record is stored), succeeded -> ``completed``, failed -> ``failed``, cancelled ->
  ``cancelling`` while its worker may still store a last chunk (it heartbeated within the
  queue's visibility timeout), then ``cancelled``.
- **One line's failure is not the batch's.** A request the model's backend refuses (its own
  fault: ``InvalidRequest``, ``ContextWindowExceeded``) is stored as a failed record holding
  OpenAI's error (``batch_requests.line_failure``); the batch goes on and ``completed``, with
  that line in the error file and counted in ``request_counts.failed``. Errors that are not
  the line's (backend unreachable, rate limited, a bug) fail the job's attempt, which is retried
  as any job's; a job that fails its last attempt makes a ``failed`` batch.
- **Expiry** (``completion_window`` ``24h``, ``api.batch_window_s`` seconds): ``expires_at`` is
  set at creation and kept with the batch. It is enforced when the batch is read (retrieve,
  list, cancel, its files), not by the workers: the first read after ``expires_at`` of a batch
  whose job is still queued or running cancels that job, marked as expired, in the one
  conditional update that also decides a race with its worker finishing it (whichever comes
  first wins; a job its worker finished before any such read keeps its outcome, the work
  being done). Enforcing it on read keeps the workers free of OpenAI's notions and needs no
  sweeper process; the cost is that an expired job nobody looks at runs on, which only spends
  the user's own compute. A running job stops at its next chunk; until its worker can no
  longer store one, the batch is ``finalizing``, then ``expired``: the answers stored by then
  are its output (and error) file, and every other line is in the error file with code
  ``batch_expired``.
- **Output and error files** are written once the batch has ended, from the stored records in
  line order, to ``generated/batch-jobs/<job>/openai/{output,errors}.jsonl`` (ids
  ``file-batch-<job>-output`` and ``-errors``); an empty one is not reported. Every line is in
  exactly one of them when the batch completed, failed or expired: a failed batch's unanswered
  lines are in its error file (``batch_failed``), an expired one's too (``batch_expired``); a
  cancelled batch's are in neither.

Files and batches are per user, admins included (as OpenAI's are per organisation).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from textnlp.adapters.db.jobs import JobRow
from textnlp.adapters.storage import Keys
from textnlp.deployment import UPLOAD_METADATA_KEY, UPLOAD_METADATA_MANUAL
from textnlp.errors import Conflict, DatasetError, InvalidInput, InvalidParameter, NotFound, quoted
from textnlp.services.batch_requests import CHAT_COMPLETIONS, BatchRequestItem, read_batch_file
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService, as_utc
from textnlp.services.list_cursor import (
    SortKey,
    created_ms,
    created_time,
    page_start,
    time_ordered_hex,
    unplaced,
)
from textnlp.services.openai_objects import (
    EXPIRED_MESSAGE,
    Batch,
    BatchCreate,
    BatchError,
    BatchErrors,
    BatchExtras,
    BatchList,
    BatchRequestCounts,
    BatchStatus,
    FileDeleted,
    FileInfo,
    FileList,
    FileObject,
    answer_line,
    missing_line,
)
from textnlp.services.text_boundary import text_problem

JSONL = "application/x-ndjson"
#: Bytes read at a time from an upload (and from a stored input file).
CHUNK_BYTES = 1 << 16
#: The error of a job its batch's expiry cancelled (how an expired batch is told from a
#: cancelled one: set in the same update that ends the job).
EXPIRED_ERROR = "expired: the batch's completion window ended before it did"
_ENDED: frozenset[BatchStatus] = frozenset({"completed", "failed", "expired", "cancelled"})
_UPLOAD_ID = re.compile(r"^file-([0-9a-f]{32})$")
_INFO_KEY = re.compile(r"/file-[0-9a-f]{32}\.json$")
#: Descriptions a file listing reads at once (under botocore's pool of 10 connections).
_LISTING_READS = 8
#: Jobs a batch listing reads from the table at once.
_LISTING_CHUNK = 500
_OUTPUT_ID = re.compile(r"^file-batch-([0-9a-f]{32})-(output|errors)$")
_BATCH_ID = re.compile(r"^batch_([0-9a-f]{32})$")
_INPUT_KEY = re.compile(
    rf"^{re.escape(Keys.USER_UPLOADS)}(?P<owner>[^/]+)/file-(?P<hex>[0-9a-f]{{32}})\.jsonl$"
)


@dataclass(frozen=True)
class FileContent:
    key: str
    size: int
    filename: str


@dataclass(frozen=True)
class _OutputFile:
    """A listed batch's output or error file before its size is read (then a ``FileObject``,
    or left out when empty)."""

    row: JobRow
    kind: str
    created_at: int
    id: str


def _upload_place(after: str | None) -> SortKey | None:
    """An upload's sort key from its id alone (None: an id that does not say when)."""
    match = _UPLOAD_ID.match(after or "")
    ms = created_ms(match.group(1)) if match else None
    return None if ms is None or after is None else (ms // 1000, after)


def _unix(value: datetime | None) -> int | None:
    value = as_utc(value)
    return None if value is None else int(value.timestamp())


class OpenAIBatchService:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.storage = jobs.storage
        self.settings = jobs.settings

    # -- files -----------------------------------------------------------------------------
    def upload(self, owner: Owner, filename: str, purpose: str, stream: BinaryIO) -> FileObject:
        """Check a batch input file line by line and store it under the owner's uploads.

        ``stream`` is the upload, seekable (a spooled temporary file): it is read twice, in
        chunks, to check it and to store it, so a large file is never in memory whole.
        """
        if purpose != "batch":
            raise InvalidInput(f"purpose {purpose!r} is not supported: TextNLP takes 'batch' files")
        if problem := text_problem(filename):
            raise InvalidInput(f"file name: {problem}")
        name = Path(filename or "upload.jsonl").name[:200] or "upload.jsonl"
        size = 0

        def chunks() -> Iterator[bytes]:
            nonlocal size
            while chunk := stream.read(CHUNK_BYTES):
                size += len(chunk)
                yield chunk

        limit = self.settings.generation.max_count
        first: BatchRequestItem | None = None
        longest: BatchRequestItem | None = None  # the first line of the largest max_tokens
        count = most = 0
        for item in read_batch_file(name, chunks()):
            count += 1
            if count > limit:
                raise DatasetError(
                    f"batch file {name}, line {item.line}: a batch takes at most {limit} requests"
                )
            first = first or item
            if (item.params.max_tokens or 0) > most:
                longest, most = item, item.params.max_tokens or 0
        assert first is not None  # read_batch_file refuses a file without requests
        # Time-ordered: a list's page after this file finds its place when it is deleted.
        hex_id = time_ordered_hex()
        info = FileInfo(
            id=f"file-{hex_id}",
            filename=name,
            bytes=size,
            created_at=(created_ms(hex_id) or 0) // 1000,
            endpoint=first.url,
            model=first.model,
            requests=count,
            max_tokens=longest.params.max_tokens if longest else None,
            max_tokens_line=longest.line if longest else None,
        )
        description = info.model_dump_json().encode()
        # The quota counts what is stored: the file and its description.
        self.jobs.check_upload_room(owner, size + len(description))
        # Both marked for the deployment's upload trigger to leave alone: a batch submits them.
        manual = {UPLOAD_METADATA_KEY: UPLOAD_METADATA_MANUAL}
        stream.seek(0)
        self.storage.put_stream(
            self._upload_key(owner, hex_id), stream, content_type=JSONL, metadata=manual
        )
        # The description last: a file exists once it is stored (an orphan upload is unseen).
        self.storage.put_bytes(
            self._info_key(owner, hex_id),
            description,
            content_type="application/json",
            metadata=manual,
        )
        return self._file_object(info)

    def file(self, owner: Owner, file_id: str) -> FileObject:
        if _OUTPUT_ID.match(file_id):
            return self._output_object(owner, file_id)
        return self._file_object(self._info(owner, file_id))

    def files(
        self,
        owner: Owner,
        *,
        after: str | None = None,
        limit: int = 10_000,
        purpose: str | None = None,
        newest_first: bool = True,
    ) -> FileList:
        """The owner's files: uploaded batch files (``purpose`` ``batch``) and their ended
        batches' output and error files (``batch_output``), as OpenAI lists them."""
        listed: list[FileObject | _OutputFile] = []
        if purpose in (None, "batch"):
            keys = self.storage.list(Keys.upload(owner.id, "file-"))
            described = [key for key in keys if _INFO_KEY.search(key)]
            # One read per file: at the same time, as S3's latency, not its work, is the cost.
            with ThreadPoolExecutor(max_workers=_LISTING_READS) as pool:
                infos = [info for info in pool.map(self._listed_info, described) if info]
            listed += [self._file_object(info) for info in infos]
        if purpose in (None, "batch_output"):
            listed += self._output_files(owner)
        listed.sort(key=lambda item: (item.created_at, item.id), reverse=newest_first)
        start = page_start(
            [(item.created_at, item.id) for item in listed],
            after,
            descending=newest_first,
            placed=_upload_place(after),
        )
        page, has_more = self._page(listed[start:], limit)
        return FileList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=has_more,
        )

    def _output_files(self, owner: Owner) -> list[_OutputFile]:
        """The output and error files the owner's ended batches (all of them) may have, placed
        in the list by their batch's end, their sizes not read yet."""
        files = []
        for row in map(self._expire, self._batch_rows(owner)):
            if self._status(row) in _ENDED:
                finished = _unix(row.finished_at) or 0
                files += [
                    _OutputFile(row, kind, finished, self._output_id(row.id, kind))
                    for kind in ("output", "errors")
                ]
        return files

    def _page(
        self, listed: list[FileObject | _OutputFile], limit: int
    ) -> tuple[list[FileObject], bool]:
        """The first ``limit`` files of ``listed`` and whether more follow. A batch's files are
        listed once they are known not to be empty (an empty one is not reported): their sizes
        are read, and written where no one asked for them yet, only for the batches the page
        (and one file past it) reaches, a few at a time; a batch whose job is deleted meanwhile
        is left out."""
        page: list[FileObject] = []
        sizes: dict[str, dict[str, int] | None] = {}
        at = 0
        with ThreadPoolExecutor(max_workers=_LISTING_READS) as pool:
            while at < len(listed):
                # No more files than the page still needs, and one to tell whether more follow.
                part = listed[at : at + min(limit + 1 - len(page), _LISTING_READS * 4)]
                at += len(part)
                rows = {
                    item.row.id: item.row
                    for item in part
                    if isinstance(item, _OutputFile) and item.row.id not in sizes
                }
                sizes.update(zip(rows, pool.map(self._listed_outputs, rows.values()), strict=True))
                for item in part:
                    if isinstance(item, FileObject):
                        listed_file = item
                    elif size := (sizes[item.row.id] or {}).get(item.kind, 0):
                        listed_file = self._output_file_object(item, size)
                    else:
                        continue  # empty, or its batch's job deleted meanwhile
                    if len(page) == limit:
                        return page, True
                    page.append(listed_file)
        return page, False

    def _output_file_object(self, item: _OutputFile, size: int) -> FileObject:
        return FileObject(
            id=item.id,
            bytes=size,
            created_at=item.created_at,
            filename=self._output_name(item.row.id, item.id),
            purpose="batch_output",
        )

    def _listed_outputs(self, row: JobRow) -> dict[str, int] | None:
        """A listed batch's ``_outputs``; None when its job was deleted since it was listed."""
        try:
            return self._outputs(row)
        except NotFound:
            return None

    def content(self, owner: Owner, file_id: str) -> FileContent:
        """Where a file's bytes are (a batch's output is written when first asked for)."""
        if match := _OUTPUT_ID.match(file_id):
            row = self._output_row(owner, file_id)
            try:
                sizes = self._outputs(row)
            except NotFound:  # its batch's job was deleted meanwhile
                raise NotFound(f"no file {quoted(file_id)}") from None
            key = self._output_key(row.id, match.group(2))
            return FileContent(key, sizes[match.group(2)], self._output_name(row.id, file_id))
        info = self._info(owner, file_id)
        key = self._upload_key(owner, info.id.removeprefix("file-"))
        return FileContent(key, self.storage.size(key), info.filename)

    def chunks(self, content: FileContent) -> Iterator[bytes]:
        return self.storage.open_read(content.key)

    def delete_file(self, owner: Owner, file_id: str) -> FileDeleted:
        """Delete an uploaded file (a batch's output stays with its batch, and a batch in
        progress keeps its input)."""
        if _OUTPUT_ID.match(file_id):
            raise Conflict(f"file {file_id} is a batch's output; it is kept with the batch")
        info = self._info(owner, file_id)
        hex_id = info.id.removeprefix("file-")
        upload = self._upload_key(owner, hex_id)

        def delete() -> None:
            self.storage.delete(self._info_key(owner, hex_id))
            self.storage.delete(upload)

        # Under the owner's uploads lock, as a batch's submit checks its file: a batch created
        # at the same moment either is refused for want of it or keeps it.
        readers = self.jobs.store.delete_prompt_file(owner.id, upload, delete)
        if readers:  # the batch reads it at every attempt: deleting it would fail the batch
            raise Conflict(
                f"file {info.id} is the input of batch_{readers[0]}, which has not ended; "
                "cancel the batch or wait for it to end"
            )
        return FileDeleted(id=info.id, deleted=True)

    # -- batches ---------------------------------------------------------------------------
    def create(self, owner: Owner, request: BatchCreate) -> Batch:
        """A job of the input file's requests, on the file's model."""
        info = self._info(owner, request.input_file_id)
        if info.endpoint != request.endpoint:
            raise InvalidInput(
                f"the requests of {info.id} are for {info.endpoint}, not {request.endpoint}"
            )
        spec = self.jobs.catalogue.get(info.model)  # an unknown model: 404
        if info.max_tokens is not None and info.max_tokens >= spec.context_length:
            raise InvalidParameter(
                f"batch file {info.filename}, line {info.max_tokens_line}: max_tokens "
                f"{info.max_tokens} does not fit the context of {spec.id} "
                f"({spec.context_length} tokens)"
            )
        job = JobSpec(
            prompt_file=self._upload_key(owner, info.id.removeprefix("file-")),
            model=info.model,
            format="jsonl",
        )
        view = self.jobs.submit(self._me(owner), job)
        extras = BatchExtras(
            endpoint=request.endpoint,
            input_file_id=info.id,
            metadata=request.metadata,
            expires_at=self._expiry(view.timings.created_at),
        )
        self.storage.put_bytes(
            self._extras_key(view.id),
            extras.model_dump_json().encode(),
            content_type="application/json",
        )
        return self.retrieve(owner, f"batch_{view.id}")

    def retrieve(self, owner: Owner, batch_id: str) -> Batch:
        return self._batch(self._batch_row(owner, batch_id))

    def cancel(self, owner: Owner, batch_id: str) -> Batch:
        row = self._batch_row(owner, batch_id)
        if self._expired(row):
            raise Conflict(f"batch {batch_id} has expired; it cannot be cancelled")
        status = self._status(row)
        if status in {"completed", "failed"}:  # said in a batch's words, not a job's
            raise Conflict(
                f"batch {batch_id} has ended ({status}); only a batch still in progress can be "
                "cancelled"
            )
        self.jobs.cancel(self._me(owner), row.id)  # a batch ending meanwhile: the job's 409
        return self.retrieve(owner, batch_id)

    def list_batches(self, owner: Owner, *, after: str | None = None, limit: int = 20) -> BatchList:
        """The owner's batches, newest first, read from the jobs table a chunk at a time (a
        batch is one kind of job among any number of others)."""
        place = None if after is None else self._place(owner, after)
        rows = list(islice(self._batch_rows(owner, place), limit + 1))  # more than the page?
        page = [batch for batch in map(self._listed_batch, rows[:limit]) if batch is not None]
        return BatchList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=len(rows) > limit,
        )

    def _batch_rows(
        self, owner: Owner, place: tuple[datetime, str] | None = None
    ) -> Iterator[JobRow]:
        """The owner's batches' jobs, newest first (after ``place``), read from the jobs table a
        chunk at a time, as far as the caller reads; the database leaves out their other jobs
        (a batch is one kind of job among any number of others)."""
        prefix = Keys.upload(owner.id, "file-")
        while True:
            chunk = self.jobs.store.list_for(
                owner.id, _LISTING_CHUNK, before=place, prompt_prefix=prefix
            )
            yield from (row for row in chunk if self._input_file_id(row))
            if len(chunk) < _LISTING_CHUNK:
                return
            place = (chunk[-1].created_at, chunk[-1].id)

    def _place(self, owner: Owner, after: str) -> tuple[datetime, str]:
        """Where the list goes on after the batch ``after``: its job's (created_at, id), or,
        once it is deleted, the time its id was made (``list_cursor``); an older, random id
        that names none of the owner's batches is refused."""
        match = _BATCH_ID.match(after)
        job_id = match.group(1) if match else ""
        row = self.jobs.store.get(job_id) if job_id else None
        if row is not None and row.owner_id == owner.id and self._input_file_id(row):
            return (row.created_at, row.id)
        made = created_time(job_id) if job_id else None
        if made is None:
            raise unplaced(after)
        return (made, job_id)

    def _listed_batch(self, row: JobRow) -> Batch | None:
        """A listed batch; None when its job was deleted since it was listed."""
        try:
            return self._batch(self._expire(row))
        except NotFound:
            return None

    # -- how a job looks as a batch --------------------------------------------------------
    def _batch(self, row: JobRow) -> Batch:
        status = self._status(row)
        extras = self._extras(row)
        finished = _unix(row.finished_at)
        output_id = error_id = None
        if status in _ENDED:
            sizes = self._outputs(row)
            output_id = self._output_id(row.id, "output") if sizes["output"] else None
            error_id = self._output_id(row.id, "errors") if sizes["errors"] else None
        unanswered = row.total - row.done if status in {"failed", "expired"} else 0
        failed = row.failed_records + unanswered
        errors = None
        if row.state == "failed":
            errors = BatchErrors(data=[BatchError(code="batch_failed", message=row.error)])
        return Batch(
            id=f"batch_{row.id}",
            endpoint=extras.endpoint,
            model=row.spec.get("model"),
            errors=errors,
            input_file_id=extras.input_file_id,
            completion_window=extras.completion_window,
            status=status,
            output_file_id=output_id,
            error_file_id=error_id,
            created_at=_unix(row.created_at) or 0,
            in_progress_at=_unix(row.started_at),
            expires_at=extras.expires_at,
            finalizing_at=finished if status == "completed" else None,
            completed_at=finished if status == "completed" else None,
            failed_at=finished if status == "failed" else None,
            expired_at=finished if status == "expired" else None,
            cancelling_at=finished if status in {"cancelling", "cancelled"} else None,
            cancelled_at=finished if status == "cancelled" else None,
            request_counts=BatchRequestCounts(
                total=row.total, completed=row.done - row.failed_records, failed=failed
            ),
            metadata=extras.metadata,
        )

    def _status(self, row: JobRow) -> BatchStatus:
        if row.state == "queued":
            return "validating"
        if row.state == "running":
            return "finalizing" if row.done >= row.total else "in_progress"
        if row.state == "succeeded":
            return "completed"
        if row.state == "failed":
            return "failed"
        expired = self._expired(row)
        heartbeat = as_utc(row.heartbeat_at)
        window = timedelta(seconds=self.settings.queue.visibility_timeout_s)
        if row.worker and heartbeat is not None and datetime.now(UTC) - heartbeat < window:
            # Its worker may still store the chunk it was filling.
            return "finalizing" if expired else "cancelling"
        return "expired" if expired else "cancelled"

    @staticmethod
    def _expired(row: JobRow) -> bool:
        return row.state == "cancelled" and row.error == EXPIRED_ERROR

    def _expiry(self, created_at: datetime | None) -> int:
        """When a batch created at ``created_at`` expires (unix seconds)."""
        return (_unix(created_at) or int(time.time())) + self.settings.api.batch_window_s

    def _expire(self, row: JobRow) -> JobRow:
        """The row, its job cancelled as expired first when its window has ended (see the
        module's docstring: expiry is enforced on read)."""
        if row.state not in {"queued", "running"}:
            return row
        expires_at = self._extras(row).expires_at
        if expires_at is None or time.time() < expires_at:
            return row
        # Conditional on the job being live: a worker finishing it meanwhile wins, or loses.
        self.jobs.store.finish(row.id, "cancelled", error=EXPIRED_ERROR)
        return self.jobs.store.get(row.id) or row

    def _outputs(self, row: JobRow) -> dict[str, int]:
        """The sizes of the ended batch's ``output`` and ``errors`` files, written once.

        ``NotFound`` when the batch's job is deleted meanwhile (``jobs delete``, a purge):
        what this wrote after the deletion removed the job's files is removed too, so that no
        file outlives its job."""
        if self._status(row) not in _ENDED:
            raise Conflict(f"batch batch_{row.id} has not ended; its files come when it has")
        keys = {kind: self._output_key(row.id, kind) for kind in ("output", "errors")}
        wrote = False
        try:
            sizes = self._written_sizes(keys)
            if sizes is None:
                self._write_outputs(row, keys["output"], keys["errors"])
                wrote = True
                sizes = {kind: self.storage.size(key) for kind, key in keys.items()}
        except NotFound:  # deleted between the write (or the check) and the read
            if self.jobs.store.get(row.id) is not None:
                raise
            sizes = None
        if sizes is None or (wrote and self.jobs.store.get(row.id) is None):
            for key in keys.values():
                self.storage.delete(key)
            raise NotFound(f"no batch {quoted('batch_' + row.id)}")
        return sizes

    def _written_sizes(self, keys: dict[str, str]) -> dict[str, int] | None:
        """The files' sizes, read alone where they are written (None: the output, written
        last, is not); ``NotFound`` when the error file is gone after all (its job deleted)."""
        try:
            output = self.storage.size(keys["output"])
        except NotFound:
            return None
        return {"output": output, "errors": self.storage.size(keys["errors"])}

    def _write_outputs(self, row: JobRow, output: str, errors: str) -> None:
        """Both files from the stored records in line order (the same bytes each time, so a
        second writer racing this one is harmless); the output last, as the mark of both."""
        endpoint = self._extras(row).endpoint
        unanswered: tuple[str, str] | None = None  # the code and message of lines not answered
        if row.state == "failed":
            unanswered = ("batch_failed", row.error or "the batch failed")
        elif self._expired(row):
            unanswered = ("batch_expired", EXPIRED_MESSAGE)
        workdir = Path(tempfile.mkdtemp(prefix=f"textnlp-batch-{row.id[:8]}-"))
        try:
            out_path, err_path = workdir / "output.jsonl", workdir / "errors.jsonl"
            seen: set[int] = set()
            with out_path.open("w") as out, err_path.open("w") as err:
                for record in self.jobs.store.iter_records(row.id, ok_only=False):
                    seen.add(record.index)
                    line = answer_line(row.id, record, endpoint)
                    (out if record.status == "ok" else err).write(line.model_dump_json() + "\n")
                if unanswered is not None and len(seen) < row.total:
                    for index, item in enumerate(self._requests(row)):
                        if index not in seen:
                            missing = missing_line(row.id, index, item, *unanswered)
                            err.write(missing.model_dump_json() + "\n")
            self.storage.put_file(errors, err_path, content_type=JSONL)
            self.storage.put_file(output, out_path, content_type=JSONL)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _requests(self, row: JobRow) -> Iterator[BatchRequestItem]:
        """The input file's requests, read as a stream (none when it was deleted meanwhile)."""
        key = str(row.spec.get("prompt_file", ""))
        try:
            yield from read_batch_file(key, self.storage.open_read(key))
        except (NotFound, DatasetError):
            return

    # -- lookups ---------------------------------------------------------------------------
    @staticmethod
    def _me(owner: Owner) -> Owner:
        return Owner(id=owner.id)  # batches and files are per user, admins' too

    def _upload_key(self, owner: Owner, hex_id: str) -> str:
        return Keys.upload(owner.id, f"file-{hex_id}.jsonl")

    def _info_key(self, owner: Owner, hex_id: str) -> str:
        return Keys.upload(owner.id, f"file-{hex_id}.json")

    @staticmethod
    def _output_id(job_id: str, kind: str) -> str:
        return f"file-batch-{job_id}-{kind}"

    @staticmethod
    def _output_key(job_id: str, kind: str) -> str:
        return f"{Keys.BATCH_JOBS}{job_id}/openai/{kind}.jsonl"

    @staticmethod
    def _extras_key(job_id: str) -> str:
        return f"{Keys.BATCH_JOBS}{job_id}/openai/batch.json"

    @staticmethod
    def _output_name(job_id: str, file_id: str) -> str:
        return f"batch_{job_id}_{file_id.rsplit('-', 1)[-1]}.jsonl"

    def _info(self, owner: Owner, file_id: str) -> FileInfo:
        match = _UPLOAD_ID.match(file_id)
        key = self._info_key(owner, match.group(1)) if match else None
        if key is None or not self.storage.exists(key):
            raise NotFound(f"no file {quoted(file_id)}")
        try:
            return FileInfo.model_validate_json(self.storage.get_bytes(key))
        except (NotFound, ValidationError):
            raise NotFound(f"no file {quoted(file_id)}") from None

    def _listed_info(self, key: str) -> FileInfo | None:
        """A listed file's description; None when it was deleted since it was listed."""
        try:
            return FileInfo.model_validate_json(self.storage.get_bytes(key))
        except (NotFound, ValidationError):
            return None

    @staticmethod
    def _input_file_id(row: JobRow) -> str | None:
        """The id of the job's input file when the job is a batch of its owner's."""
        match = _INPUT_KEY.match(str(row.spec.get("prompt_file") or ""))
        if match is None or match.group("owner") != row.owner_id:
            return None
        return f"file-{match.group('hex')}"

    def _batch_row(self, owner: Owner, batch_id: str) -> JobRow:
        match = _BATCH_ID.match(batch_id)
        row = self.jobs.store.get(match.group(1)) if match else None
        if row is None or row.owner_id != owner.id or self._input_file_id(row) is None:
            raise NotFound(f"no batch {quoted(batch_id)}")  # someone else's batch does not exist
        return self._expire(row)

    def _output_row(self, owner: Owner, file_id: str) -> JobRow:
        """The batch whose output (or error) file ``file_id`` is; a missing one is the file's."""
        match = _OUTPUT_ID.match(file_id)
        assert match is not None
        try:
            return self._batch_row(owner, f"batch_{match.group(1)}")
        except NotFound:
            raise NotFound(f"no file {quoted(file_id)}") from None

    def _extras(self, row: JobRow) -> BatchExtras:
        """The batch's extras; rebuilt from its file when lost (a crash right after submit)."""
        try:
            return BatchExtras.model_validate_json(self.storage.get_bytes(self._extras_key(row.id)))
        except NotFound:
            file_id = self._input_file_id(row) or ""
            try:
                endpoint = self._info(Owner(row.owner_id), file_id).endpoint
            except NotFound:
                endpoint = CHAT_COMPLETIONS
            expires_at = self._expiry(row.created_at)
            return BatchExtras(endpoint=endpoint, input_file_id=file_id, expires_at=expires_at)

    def _file_object(self, info: FileInfo) -> FileObject:
        return FileObject(
            id=info.id,
            bytes=info.bytes,
            created_at=info.created_at,
            filename=info.filename,
            purpose="batch",
        )

    def _output_object(self, owner: Owner, file_id: str) -> FileObject:
        content = self.content(owner, file_id)
        row = self._output_row(owner, file_id)
        return FileObject(
            id=file_id,
            bytes=content.size,
            created_at=_unix(row.finished_at) or 0,
            filename=content.filename,
            purpose="batch_output",
        )
