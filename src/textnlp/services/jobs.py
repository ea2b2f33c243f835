"""Batch jobs: submit (transactional outbox + idempotency key), status, cancel, results, delete.

Submitting stores the job *and* its queue message in one database transaction (the outbox),
then publishes the message. If the process dies between the two, ``publish_pending`` (run by
every worker loop and after each submit) sends it later: the job can never exist without its
message nor the message without its job. Publishing twice is harmless: the message is
deduplicated by job id and the worker ignores messages of finished jobs.

The same service serves the API, the CLI (local profile) and, through ``JobRuns`` (the
workers' side of jobs), the worker.

Cost: a job's ``cost_usd`` grows with each checkpointed chunk (``JobStore.save_records``). A job
may carry ``max_cost_usd`` (else ``models.job_spending_cap_usd`` applies): the worker runs it
under that cap, seeded with what the job already spent, and under its owner's remaining budget
(``SpendingService``); submitting a job that calls a priced model (its own, or a recipe
column's) is refused once the owner's spend has reached their cap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from textnlp.adapters.db.job_store import (
    IdempotencyMismatch,
    JobStore,
    NewJob,
    PendingMessage,
    settled,
)
from textnlp.adapters.db.jobs import JobRow
from textnlp.adapters.queue import QueuePair
from textnlp.adapters.storage import BlobStorage, Keys
from textnlp.backends.registry import ModelCatalogue
from textnlp.backends.spec import ModelSpec
from textnlp.config import Settings
from textnlp.deployment import UPLOAD_METADATA_KEY, UPLOAD_METADATA_MANUAL
from textnlp.domain.jobs import TERMINAL_STATES
from textnlp.egress import EgressPolicy
from textnlp.errors import (
    Conflict,
    DatasetError,
    InvalidInput,
    InvalidParameter,
    NotFound,
    QuotaExceeded,
    quoted,
)
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.templates import PromptTemplate, TemplateLibrary
from textnlp.observability.spans import trace_header
from textnlp.services.batch_requests import BatchRequestItem
from textnlp.services.job_models import (
    JobMessage,
    JobProgress,
    JobResult,
    JobSpec,
    JobTimings,
    JobView,
    Owner,
    PromptItem,
    UploadedFile,
    UploadList,
)
from textnlp.services.job_prompts import iter_prompt_file, normalise, prompt_list_template
from textnlp.services.job_records import PAGE_SIZE, JobRecords, JobReport, RecordPage, RecordQuery
from textnlp.services.list_cursor import created_time, time_ordered_hex
from textnlp.services.models import ModelPool
from textnlp.services.spending import SpendingService

log = logging.getLogger(__name__)

#: Largest prompt file accepted (the file is parsed at submit to refuse bad ones early).
MAX_PROMPT_FILE_BYTES = 256 * 1024 * 1024
#: Bytes an upload's file name keeps in its storage key (those ``keys.check_key`` allows, less
#: ``=``, the escape, and the space, which S3 events write ``+``); any other is written ``=XX``.
_NAME_BYTES = frozenset((string.ascii_letters + string.digits + "!_.*'()-").encode())
#: Characters of an upload's escaped name in its key: with the 17 of the digest it stays
#: within the 255 bytes a file system allows a name, and the temporary file's prefix.
MAX_UPLOAD_KEY_NAME = 200


@dataclass(frozen=True)
class ResultDownload:
    key: str
    format: str
    url: str | None
    size: int


#: What ``upload_name`` makes: the digest, then the escaped name.
_UPLOAD_NAME = re.compile(r"[0-9a-f]{16}-.")


def upload_name(name: str, data: bytes) -> str:
    """An upload's name in storage: a digest of its bytes, then its file name with each byte
    of another character than storage keys allow written ``=XX`` (``café.jsonl`` ->
    ``caf=C3=A9.jsonl``), cut to ``MAX_UPLOAD_KEY_NAME`` with its extension kept. Uploads of
    other users never meet (the key has the user), nor different files (the digest)."""
    raw = name.encode("utf-8", "surrogatepass")  # a file system's undecodable bytes too
    escaped = "".join(chr(b) if b in _NAME_BYTES else f"={b:02X}" for b in raw)
    if len(escaped) > MAX_UPLOAD_KEY_NAME:  # the extension (.jsonl, .csv) says the format
        suffix = Path(escaped).suffix if len(Path(escaped).suffix) <= 8 else ""
        escaped = escaped[: MAX_UPLOAD_KEY_NAME - len(suffix)] + suffix
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{escaped}"


def request_hash(spec: JobSpec) -> str:
    """The request an idempotency key stands for: the spec as resolved (a default sent or left
    out, keys in any order: the same request), so a client's retry matches whatever its
    serialiser wrote."""
    resolved = json.dumps(spec.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(resolved.encode()).hexdigest()


def check_provider_batch(model: ModelSpec, template: PromptTemplate | Recipe) -> None:
    """A ``provider_batch`` job needs a template or prompts (a recipe's columns call models in
    turn) and a model whose provider has a batch API."""
    from textnlp.backends.batch import unsupported
    from textnlp.backends.registry import backend_class

    if isinstance(template, Recipe):
        raise InvalidParameter("provider_batch applies to template and prompt jobs, not recipes")
    reason = unsupported(backend_class(model.backend))
    if reason is not None:
        raise InvalidParameter(f"provider_batch: model {model.id}: {reason}")


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class JobService:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        queues: QueuePair,
        storage: BlobStorage,
        catalogue: ModelCatalogue,
        templates: TemplateLibrary,
        spending: SpendingService,
        pool: ModelPool,
    ) -> None:
        self.settings = settings
        #: Asked whether the job's models can run here, at submit (not after three attempts).
        self.pool = pool
        self.store = store
        self.queues = queues
        self.storage = storage
        self.catalogue = catalogue
        self.templates = templates
        self.spending = spending

    # -- submit ----------------------------------------------------------------------------
    def submit(self, owner: Owner, spec: JobSpec, *, idempotency_key: str | None = None) -> JobView:
        """Check the job, store it with its message, publish; the same key returns the same job."""
        if spec.webhook_url is not None:
            # Checked here (422) and again at send time, when the name may resolve elsewhere.
            EgressPolicy(allow_private=self.settings.queue.webhook_allow_private).check(
                str(spec.webhook_url)
            )
        total = self.check(spec, owner)
        # Time-ordered, and made when the job is: a list can place it after it is deleted.
        job_id = time_ordered_hex()
        queue = (
            self.queues.batch
            if total >= self.settings.queue.batch_threshold or spec.prompt_file
            else self.queues.generation
        )
        idempotency = None
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 255:
                raise InvalidInput("Idempotency-Key must be 1 to 255 characters")
            idempotency = (idempotency_key, request_hash(spec))
        try:
            if idempotency is None or self.store.idempotent(owner.id, *idempotency) is None:
                # Only a new job meets the owner's spending cap: a retried submit gets its job.
                for model in self.models_called(spec):
                    self.spending.check(owner.id, model)
            row = self.store.create(
                NewJob(
                    id=job_id,
                    owner_id=owner.id,
                    # Only what the user set: a rule switched off with null stays off (exclude_none
                    # would bring its default back when the worker reads the spec).
                    spec=spec.model_dump(mode="json", exclude_unset=True),
                    queue=queue.name,
                    total=total,
                    body=JobMessage(job_id=job_id).model_dump_json(),
                    trace_header=trace_header(),
                    created_at=created_time(job_id),
                ),
                idempotency=idempotency,
                check_prompt_file=self._prompt_file_check(spec, owner),
            )
        except IdempotencyMismatch:
            raise InvalidInput(
                f"Idempotency-Key {idempotency_key!r} was used with a different request"
            ) from None
        self.publish_pending(job_id=row.id)
        return self.view(row)

    def models_called(self, spec: JobSpec) -> list[ModelSpec]:
        """The models a run of the job calls: its model, or a recipe's columns' (their own,
        the recipe's, else the job's)."""
        model_id = spec.model or self.settings.default_model
        called = {model_id}
        if spec.template is not None:
            source = self.templates.source(spec.template)
            if isinstance(source, Recipe):
                called = set(source.llm_models(model_id).values())
        return [self.catalogue.get(m) for m in sorted(called)]

    def check(self, spec: JobSpec, owner: Owner) -> int:
        """Every check that needs no model; returns the number of records."""
        limit = self.settings.generation.max_count
        spec_model = self.catalogue.get(spec.model or self.settings.default_model)
        template: PromptTemplate | Recipe
        if spec.template is not None:
            template = self.templates.source(spec.template)  # a catalogue id, never a path
            total = spec.count or 0
        else:
            if spec.prompts:
                first, total = self._check_prompts(normalise(spec.prompts))
            else:
                # A file is read as a stream, each prompt checked and counted, none kept: a
                # 200 MB batch file held whole was gigabytes of the API's memory per submit.
                first, total = self._check_prompts(
                    self.iter_prompt_file(spec, owner), file=spec.prompt_file
                )
            template = prompt_list_template([first])
            model = spec.model or self.settings.default_model
            if isinstance(first, BatchRequestItem) and first.model != model:
                # The runner sends every request to the job's model: it must be the file's.
                raise InvalidParameter(
                    f"the batch file's requests name model {first.model!r}, "
                    f"the job {model!r}; submit it with model {first.model!r}"
                )
        if total > limit:
            raise InvalidParameter(f"count {total} is above the maximum of {limit}")
        if spec.provider_batch:
            check_provider_batch(spec_model, template)
        request = DatasetRequest(
            template=template,
            count=total,
            params=spec.params.given(),
            variables=dict(spec.variables),
            seed=spec.seed,
            max_candidates=spec.max_candidates,
        )
        models = {spec_model.id}

        def spec_of(model_id: str) -> ModelSpec:  # a recipe's columns may name other models
            models.add(model_id)
            return self.catalogue.get(model_id)

        DatasetPipeline.resolve(spec_model, request, spec_of)
        for model_id in sorted(models):
            self.pool.check_available(model_id)
        return total

    def _check_prompts(
        self, items: Iterable[PromptItem], *, file: str | None = None
    ) -> tuple[PromptItem, int]:
        """The first of ``items`` and how many there are, read once and none kept.

        A prompt over the API's bound (``api.max_prompt_chars``, as for one generation) is
        refused at upload and at submit: at run time it would fail the job, attempt after
        attempt. (An OpenAI batch file's line fails alone, as OpenAI's do: its requests are not
        checked.) A list's prompt is named by its index, a file's by its number from 1."""
        limit = self.settings.api.max_prompt_chars
        first: PromptItem | None = None
        count = 0
        for index, item in enumerate(items):
            first = item if first is None else first
            count += 1
            if isinstance(item, BatchRequestItem):
                continue
            if len(item.prompt) + len(item.system or "") > limit:
                if file is not None:
                    raise InvalidParameter(
                        f"prompt file {quoted(file)}: prompt {index + 1} is over {limit} "
                        "characters",
                        parameter="prompt_file",
                    )
                raise InvalidParameter(
                    f"prompt {index} is over {limit} characters", parameter="prompts"
                )
        if first is None:  # a file says it is empty first; a list is never
            raise InvalidParameter("there are no prompts", parameter="prompts")
        return first, count

    def _prompt_file_check(self, spec: JobSpec, owner: Owner) -> Callable[[], None] | None:
        """For the store: the job's prompt file is still there as the job is stored (it was
        read at ``check``; a delete may have come since, ``delete_upload``)."""
        key = spec.prompt_file
        if key is None:
            return None

        def check() -> None:
            if not self.storage.exists(key):
                raise NotFound(f"no prompt file {quoted(key)}: it was deleted")

        return check

    def iter_prompt_file(self, spec: JobSpec, owner: Owner) -> Iterator[PromptItem]:
        """The prompts of the job's file, read as a stream from storage."""
        key = spec.prompt_file or ""
        if not key.startswith(Keys.USER_UPLOADS):
            raise InvalidInput(f"prompt_file must be a key under {Keys.USER_UPLOADS}")
        if not owner.is_admin and not key.startswith(f"{Keys.USER_UPLOADS}{owner.id}/"):
            raise NotFound(f"no prompt file {quoted(key)}")  # another user's upload
        try:
            if self.storage.size(key) > MAX_PROMPT_FILE_BYTES:
                raise DatasetError(
                    f"prompt file {key} is larger than {MAX_PROMPT_FILE_BYTES} bytes"
                )
            chunks = self.storage.open_read(key)
        except NotFound:  # the storage's words name its layout; a user's own is the same 404
            raise NotFound(f"no prompt file {quoted(key)}") from None
        return iter_prompt_file(key, chunks)

    def _prompt_file_bytes(self, key: str) -> bytes:
        try:
            if self.storage.size(key) > MAX_PROMPT_FILE_BYTES:
                raise DatasetError(
                    f"prompt file {key} is larger than {MAX_PROMPT_FILE_BYTES} bytes"
                )
            return self.storage.get_bytes(key)
        except NotFound:  # the storage's words name its layout; a user's own is the same 404
            raise NotFound(f"no prompt file {quoted(key)}") from None

    def submit_bucket_upload(self, key: str) -> JobView:
        """The job of a prompt file put straight into the bucket under
        ``prompts/user-uploads/<user>/`` (the batch processor's ``S3_KEY``), as that user's.

        Such a key is the user's to overwrite, so the job reads a copy of the version read
        here, stored as the upload route stores files (content-addressed, ``upload_name``, and
        marked for the trigger to leave alone): a new version is a new job, a job never reads
        a version it was not checked against, and the same bytes again (a retried or re-run
        task) are the same job.
        """
        parts = key.split("/")
        if not key.startswith(Keys.USER_UPLOADS) or len(parts) < 4 or not all(parts[2:]):
            raise InvalidInput(f"S3_KEY must be {Keys.USER_UPLOADS}<user>/<file> (got {key!r})")
        owner = Owner(id=parts[2])
        data = self._prompt_file_bytes(key)
        self._check_prompts(iter_prompt_file(key, [data]), file=key)
        copy = Keys.upload(owner.id, upload_name("/".join(parts[3:]), data))
        if not self.storage.exists(copy):  # the user's own bytes: no quota is asked twice
            self.storage.put_bytes(
                copy, data, metadata={UPLOAD_METADATA_KEY: UPLOAD_METADATA_MANUAL}
            )
        return self.submit(
            owner, JobSpec(prompt_file=copy, format="jsonl"), idempotency_key=f"s3:{copy}"[:255]
        )

    def upload_prompts(self, owner: Owner, name: str, data: bytes) -> str:
        """Store a prompt file under the user's upload prefix after checking it parses.

        The user submits it as ``prompt_file`` with their own parameters, so the object is
        marked for the deployment's upload trigger to leave alone (no second job of it). The
        same file uploads to the same key (``upload_name``): a retried submit is the same
        request, for its idempotency key, and leaves no second copy.
        """
        if "/" in name:
            raise InvalidInput(f"upload name {name!r} must be a file name, without '/'")
        self._check_prompts(iter_prompt_file(name, [data]), file=name)
        key = Keys.upload(owner.id, upload_name(name, data))
        if not self.storage.exists(key):  # the same file again takes no more room
            self.check_upload_room(owner, len(data))
        self.storage.put_bytes(key, data, metadata={UPLOAD_METADATA_KEY: UPLOAD_METADATA_MANUAL})
        return key

    def uploads(self, owner: Owner) -> UploadList:
        """The owner's prompt files (their names in storage, as the upload answered), and how
        much of the upload quota they take."""
        prefix = Keys.upload(owner.id, "")
        names = [key[len(prefix) :] for key in sorted(self.storage.list(prefix))]
        files = [
            UploadedFile(name=name, key=prefix + name, bytes=self.storage.size(prefix + name))
            for name in names
            if _UPLOAD_NAME.match(name)  # not /v1/files' objects, which share the prefix
        ]
        return UploadList(
            uploads=files,
            used_bytes=self.storage.usage(prefix),
            quota_bytes=self.settings.api.max_upload_bytes_per_user,
        )

    def delete_upload(self, owner: Owner, name: str) -> None:
        """Delete one of the owner's prompt files (``name`` as the upload answered). A file a
        queued or running job of theirs reads is refused: the job would fail for want of it."""
        key = Keys.upload(owner.id, name)
        if "/" in name or not _UPLOAD_NAME.match(name) or not self.storage.exists(key):
            raise NotFound(f"no upload {quoted(name)}")
        readers = self.store.delete_prompt_file(owner.id, key, lambda: self.storage.delete(key))
        if readers:
            raise Conflict(
                f"job {readers[0]} reads {name!r} and has not finished: cancel it or wait for "
                "it to end, then delete the file",
                job_id=readers[0],
            )

    def check_upload_room(self, owner: Owner, size: int) -> None:
        """``QuotaExceeded`` when ``size`` more bytes would take the owner's uploads past
        ``api.max_upload_bytes_per_user`` (a bound on what one user can make the bucket keep;
        uploads at the same moment may pass it by one file each)."""
        limit = self.settings.api.max_upload_bytes_per_user
        used = self.storage.usage(Keys.upload(owner.id, ""))
        if used + size > limit:
            raise QuotaExceeded(
                f"uploads would take {used + size} bytes, over your {limit}-byte quota "
                f"({used} bytes used): delete uploads you no longer need first",
                limit_bytes=limit,
                used_bytes=used,
            )

    def publish_pending(self, *, job_id: str | None = None, limit: int = 100) -> int:
        """Send outbox messages not sent yet; a failure leaves them for the next call."""

        def send(message: PendingMessage) -> bool:
            try:
                self.queues.by_name(message.queue).send(
                    message.body,
                    group_id=message.job_id,
                    dedup_id=message.job_id,
                    trace_header=message.trace_header,
                )
            except Exception:  # the queue is down: the outbox keeps the message
                log.warning("could not publish job %s yet", message.job_id, exc_info=True)
                return False
            return True

        return self.store.send_pending(send, limit, job_id=job_id)

    # -- reads -----------------------------------------------------------------------------
    def _owned(self, owner: Owner, job_id: str) -> JobRow:
        row = self.store.get(job_id) if len(job_id) <= 64 else None
        if row is None or (row.owner_id != owner.id and not owner.is_admin):
            raise NotFound(f"no job {quoted(job_id)}")  # someone else's job does not exist for you
        return row

    def status(self, owner: Owner, job_id: str) -> JobView:
        return self.view(self._owned(owner, job_id))

    def watched_status(self, owner: Owner, job_id: str) -> tuple[JobView, bool]:
        """The job, and whether it will change no more: it ended, and its file is published or
        its worker has let it go (a cancelled or failed job's kept records come after its
        state; a job no worker holds has nothing more to come)."""
        row = self._owned(owner, job_id)
        settled = row.state in TERMINAL_STATES and (
            bool(row.result_key) or row.heartbeat_at is None
        )
        return self.view(row), settled

    def spec(self, owner: Owner, job_id: str) -> dict[str, Any]:
        """The request a job was submitted with (the fields its owner set), as stored, less
        its ``webhook_secret`` (a secret is never shown again: the console prints this)."""
        spec = dict(self._owned(owner, job_id).spec)
        spec.pop("webhook_secret", None)
        return spec

    def list(self, owner: Owner, limit: int = 50) -> list[JobView]:
        rows = self.store.list_for(None if owner.is_admin else owner.id, limit)
        return [self.view(r) for r in rows]

    def view(self, row: JobRow) -> JobView:
        created, started, finished = (
            as_utc(row.created_at),
            as_utc(row.started_at),
            as_utc(row.finished_at),
        )
        assert created is not None
        elapsed = None
        if started is not None:
            elapsed = round(((finished or datetime.now(UTC)) - started).total_seconds(), 3)
        result = None
        # An ended job offers its file: a cancelled or failed one keeps the records it made (its
        # state and error say that it did not succeed).
        if row.state in TERMINAL_STATES and row.result_key:
            result = JobResult(
                format=row.spec.get("format", "jsonl"),
                key=row.result_key,
                # None: the API links its route (which says when the file is archived).
                url=None if self._archived(row) else self.storage.presigned_url(row.result_key),
                validation_key=row.report_key,
            )
        return JobView(
            id=row.id,
            owner_id=row.owner_id,
            state=row.state,
            progress=JobProgress(done=row.done, total=row.total, failed=row.failed_records),
            timings=JobTimings(
                created_at=created, started_at=started, finished_at=finished, elapsed_s=elapsed
            ),
            model=row.spec.get("model") or self.settings.default_model,
            queue=row.queue,
            attempts=row.attempts,
            error=row.error if row.state in {"failed", "running"} else None,
            result=result,
            cost_usd=None if row.cost_usd is None else round(row.cost_usd, 6),
            max_cost_usd=self.spending.job_limit(row.spec),
        )

    # -- cancel and results ----------------------------------------------------------------
    def cancel(self, owner: Owner, job_id: str) -> JobView:
        """Cancel a queued or running job (a running one stops at its next checkpoint)."""
        row = self._owned(owner, job_id)
        if row.state == "cancelled":
            return self.view(row)
        if not self.store.finish(job_id, "cancelled", error="cancelled by the user"):
            current = self.store.get(job_id)
            if current is not None and current.state == "cancelled":
                return self.view(current)  # a cancel at the same moment: the same outcome
            state = current.state if current else "gone"
            raise Conflict(
                f"job {job_id} has ended ({state}); only queued or running jobs can be cancelled"
            )
        return self.status(owner, job_id)

    # -- deletion ----------------------------------------------------------------------------
    def delete(self, owner: Owner, job_id: str) -> None:
        """Delete an ended job and its data: its row, records, outbox messages, idempotency
        keys, and every object it wrote in storage (its prompt upload is the user's own file
        and stays). A queued or running job is refused (``Conflict``): cancel it first; so is
        one whose provider batch may still run (``JobStore.delete``), until it is cancelled."""
        self._owned(owner, job_id)
        live_since = self._worker_live_since()
        row = self.store.delete(job_id, live_since=live_since)
        if row is None:  # deleted at the same moment
            raise NotFound(f"no job {quoted(job_id)}")
        if row.state not in TERMINAL_STATES:
            raise Conflict(
                f"job {job_id} is {row.state}: cancel it first, then delete it",
                job_id=job_id,
                state=row.state,
            )
        if not settled(row, live_since):  # its last chunk's records and cost are to come
            raise Conflict(
                f"job {job_id} is {row.state} and its worker is still stopping: "
                "delete it once the worker has stored its last records (within a minute or so)",
                job_id=job_id,
                state=row.state,
            )
        self._delete_objects([row])

    def cancel_or_delete(self, owner: Owner, job_id: str) -> JobView | None:
        """The API's ``DELETE`` of a job: a queued or running one is cancelled, as that route
        always did (clients rely on it), and comes back; an ended one is deleted (None)."""
        row = self._owned(owner, job_id)
        if row.state not in TERMINAL_STATES:
            return self.cancel(owner, job_id)
        self.delete(owner, job_id)
        return None

    def purge(self, older_than: timedelta, *, batch: int = 100) -> int:
        """The operator's retention: delete every job that ended more than ``older_than`` ago,
        as ``delete`` does, ``batch`` jobs per transaction (a large purge holds no table for
        long); returns how many were deleted. Jobs still queued or running are kept, and so
        are those whose provider batch may still run (``JobStore.purge_ended``)."""
        if batch < 1:
            raise InvalidInput(f"a purge's batch is 1 or more jobs, got {batch}")
        before = datetime.now(UTC) - older_than
        removed = 0
        while True:
            rows = self.store.purge_ended(before, batch, live_since=self._worker_live_since())
            self._delete_objects(rows)
            removed += len(rows)
            if len(rows) < batch:
                return removed

    def _worker_live_since(self) -> datetime:
        """A worker that heartbeated since this moment may still store records of its job (a
        live one heartbeats well within its queue's visibility timeout)."""
        return datetime.now(UTC) - timedelta(seconds=self.settings.queue.visibility_timeout_s)

    def _delete_objects(self, rows: Iterable[JobRow]) -> None:
        """The storage objects of jobs whose rows are deleted: their result files (kept partial
        ones too), provider and OpenAI batch files (all under ``generated/batch-jobs/<job>/``)
        and validation report.

        Called after the rows' transaction has committed, and best effort (a failure is logged,
        the next key tried): a storage failure leaves an object no job names, never a job whose
        files are gone. (The other order, objects first, would leave a job that answers
        ``status`` with a result link to nothing.)"""
        for row in rows:
            try:
                keys = set(self.storage.list(f"{Keys.BATCH_JOBS}{row.id}/"))
            except Exception:
                log.warning("job %s deleted: its files could not be listed", row.id, exc_info=True)
                keys = set()
            keys.update(
                key
                for key in (row.result_key, row.report_key, Keys.validation_result(row.id))
                if key
            )
            for key in sorted(keys):
                try:
                    self.storage.delete(key)
                except Exception:
                    log.warning("job %s deleted: its file %s was not", row.id, key, exc_info=True)

    def _archived(self, row: JobRow) -> bool:
        """Whether the bucket's lifecycle has archived the job's file by now (by its age)."""
        days = self.settings.storage.archive_after_days
        ended = row.finished_at
        if days is None or ended is None:
            return False
        if ended.tzinfo is None:
            ended = ended.replace(tzinfo=UTC)
        return datetime.now(UTC) - ended >= timedelta(days=days)

    def results(self, owner: Owner, job_id: str) -> ResultDownload:
        row = self._owned(owner, job_id)
        if row.state not in TERMINAL_STATES or not row.result_key:
            why = {
                "cancelled": "was cancelled with no record kept",
                "failed": f"failed with no record kept: {row.error}",
            }.get(row.state, f"is {row.state}; results are ready when it has ended")
            raise Conflict(f"job {job_id} {why}")
        self.storage.readable(row.result_key)
        return ResultDownload(
            key=row.result_key,
            format=row.spec.get("format", "jsonl"),
            url=self.storage.presigned_url(row.result_key),
            size=self.storage.size(row.result_key),
        )

    def result_chunks(self, download: ResultDownload) -> Iterator[bytes]:
        """The bytes of a result file that ``results`` found (where it has no URL to give)."""
        return self.storage.open_read(download.key)

    # -- a job's records and report (the console's dataset viewer) -------------------------
    def records_page(
        self,
        owner: Owner,
        job_id: str,
        query: RecordQuery | None = None,
        *,
        offset: int = 0,
        after: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> RecordPage:
        """A page of the job's records matching ``query`` (``services.job_records``)."""
        row = self._owned(owner, job_id)
        records = JobRecords(self.store, self.storage)
        found = records.page(row, query or RecordQuery(), offset=offset, after=after, limit=limit)
        return replace(found, job=self.view(row))

    def validation_report(self, owner: Owner, job_id: str) -> JobReport:
        """The job's validation report, where its gate wrote one."""
        row = self._owned(owner, job_id)
        return JobRecords(self.store, self.storage).report(row, self.view(row))
