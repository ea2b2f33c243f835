"""The workers' side of jobs: attempts, checkpoints, outcomes, stored records and results.

``JobService`` is what users ask of jobs (submit, status, cancel, results); this is what
workers do to them. Both share the job store and the blob storage; the worker package goes
through this service only, never to the store or the storage itself, so every change of a
job's state is one of the named steps below.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textnlp.adapters.db.job_store import JobStore
from textnlp.adapters.db.jobs import JobRow
from textnlp.adapters.storage import BlobStorage, Keys
from textnlp.domain import Record
from textnlp.errors import QuotaExceeded
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.templates import PromptTemplate
from textnlp.observability.spans import trace_header
from textnlp.services.batch_requests import BATCH_TEMPLATE_ID
from textnlp.services.job_models import JobMessage, JobSpec, JobView
from textnlp.services.job_prompts import iter_prompt_file, normalise, prompt_list_template

if TYPE_CHECKING:
    from textnlp.observability.metrics import Metrics
from textnlp.services.jobs import JobService
from textnlp.services.spending import Budget

_CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}


#: Tries to keep a file while workers go on storing records (each store may make it short).
KEEP_TRIES = 5


def kept_whole(row: JobRow) -> bool:
    """Whether the ended job's kept file holds every stored record: made after the last store
    (every store beats the heartbeat, which keeping a file clears)."""
    return bool(row.result_key) and row.heartbeat_at is None


class JobRuns:
    def __init__(
        self,
        jobs: JobService,
        store: JobStore,
        storage: BlobStorage,
        metrics: Metrics | None = None,
    ) -> None:
        self.jobs = jobs
        self._store = store
        self._storage = storage
        self._metrics = metrics

    # -- what to run ------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRow | None:
        return self._store.get(job_id)

    def template(self, spec: JobSpec) -> PromptTemplate | Recipe:
        """The job's template or recipe: a named one, or a template made of its prompts
        (inline or a file)."""
        if spec.template is not None:
            return self.jobs.templates.source(spec.template)
        if spec.prompts:
            return prompt_list_template(normalise(spec.prompts))
        key = spec.prompt_file or ""
        # Read as a stream: the prompts are held, not the file's bytes beside them.
        return prompt_list_template(list(iter_prompt_file(key, self._storage.open_read(key))))

    def budget(self, row: JobRow, hold_id: str) -> Budget:
        """What a run of the job may spend (``SpendingService.job_budget``), held in its hold."""
        jobs = self.jobs
        return jobs.spending.job_budget(
            row.id,
            row.spec,
            owner_id=row.owner_id,
            spent_usd=row.cost_usd or 0.0,
            hold_id=hold_id,
        )

    def view(self, row: JobRow) -> JobView:
        return self.jobs.view(row)

    # -- attempts ---------------------------------------------------------------------------
    def start_attempt(self, job_id: str, worker: str) -> JobRow | None:
        """Count an attempt by ``worker``; None when there is no such job."""
        return self._store.start(job_id, worker)

    def claim_notice(self, job_id: str) -> bool:
        """True once per ended job: for the worker that then sends its notice."""
        return self._store.claim_notice(job_id)

    def give_back_attempt(self, job_id: str) -> None:
        """A stopped worker handed the job back: the attempt does not count."""
        self._store.uncount_attempt(job_id)

    def note_error(self, job_id: str, error: str) -> None:
        self._store.note_error(job_id, error)

    # -- a run's hold on its owner's spending cap (``SpendingService.open_hold``) -------------
    def open_hold(self, job_id: str) -> str:
        return self.jobs.spending.open_hold(job_id)

    @property
    def hold_renewal_s(self) -> float:
        """How often a run renews its hold: at its worker's heartbeat."""
        return self.jobs.spending.settings.queue.heartbeat_s

    def renew_hold(self, hold_id: str) -> None:
        self.jobs.spending.renew_hold(hold_id)

    def release_hold(self, hold_id: str) -> None:
        """A run of the job ended: it holds nothing more against its owner's spending cap but
        a provider batch it left running."""
        self.jobs.spending.release_hold(hold_id)

    def end_holds(self, job_id: str) -> None:
        """The job's runs hold nothing against its owner's cap any more, a provider batch's
        worst case included (the batch was cancelled)."""
        self._store.end_holds(job_id)

    def count_batch_cost(self, job_id: str, paid_usd: float, *, ended: bool) -> None:
        """What the job's provider batches were paid for answers it will not use goes to its
        cost; with ``ended`` (none runs any more) its holds go (``JobStore``)."""
        self._store.count_batch_cost(job_id, paid_usd, ended=ended)

    def batch_may_run(self, job_id: str) -> bool:
        """Whether the job still holds a provider batch's worst case (it may still run)."""
        return self._store.batch_may_run(job_id)

    # -- checkpoints ------------------------------------------------------------------------
    def save_chunk(
        self, job_id: str, records: Sequence[Record], *, hold_id: str | None = None
    ) -> int:
        """Store finished records (each index once); returns how many were new. Their tokens
        count in ``TokensGenerated`` (a redelivered chunk's too: the model generated them), and
        their cost leaves the hold of the run that made them (``hold_id``)."""
        if self._metrics is not None:
            for record in records:
                if not record.provenance.cached:
                    model = record.provenance.model
                    self._metrics.observe_tokens(model, record.provenance.completion_tokens)
        return self._store.save_records(job_id, records, hold_id=hold_id)

    def heartbeat(self, job_id: str) -> str | None:
        """Note the job is alive; returns its state (a user may have cancelled it)."""
        return self._store.heartbeat(job_id)

    def is_complete(self, row: JobRow) -> bool:
        """Whether every record the job asks for is stored (a recipe's: every accepted one;
        its rejected candidates are stored too)."""
        spec = JobSpec.model_validate(row.spec)
        recipe = spec.template is not None and isinstance(
            self.jobs.templates.source(spec.template), Recipe
        )
        return self._store.count_records(row.id, ok_only=recipe) >= row.total

    def stored_count(self, job_id: str, *, ok_only: bool = False) -> int:
        return self._store.count_records(job_id, ok_only=ok_only)

    def stored_records(self, job_id: str, *, ok_only: bool = True) -> Iterator[Record]:
        return self._store.iter_records(job_id, ok_only=ok_only)

    def stored_indices(self, job_id: str) -> set[int]:
        """The indices of the job's stored records, ok or failed (their texts are not read)."""
        return self._store.record_indices(job_id)

    # -- outcomes ---------------------------------------------------------------------------
    def finish(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        report_key: str | None = None,
    ) -> bool:
        """End the job in ``state``; False when it had ended already."""
        return self._store.finish(job_id, state, error=error, report_key=report_key)

    def fail_capped(self, job_id: str, exc: QuotaExceeded) -> None:
        """A spending cap stopped the job: failed with the cap's message, records kept."""
        row = self._store.get(job_id)
        kept = f"{row.done} of {row.total}" if row is not None else "the"
        error = f"{exc.message}; {kept} records kept"  # done: accepted, never a recipe's rejects
        self._store.finish(job_id, "failed", error=error)

    def finish_generation(self, job_id: str, result_key: str) -> bool:
        """The job's result is stored: finish it, or hand it to the validation service when it
        has a gate (in one transaction with its outbox message). True when it is over (its
        owner is to be told), False while validation is to come.

        Shared by the worker that generated the records and by the dead-letter sweep, which
        finishes a job whose workers died after its last record was stored."""
        row = self._store.get(job_id)
        if row is None:  # deleted (cancelled first) while the file was made: it names no job
            self._storage.delete(result_key)
            return False
        failure = self._every_record_failed(job_id)
        if failure is not None:  # nothing to validate or to download: the job failed
            self._store.finish(job_id, "failed", error=failure)
            self._storage.delete(result_key)  # a file of no record: results answers 409
            return True
        if JobSpec.model_validate(row.spec).validation is None:
            if self._store.finish(job_id, "succeeded", result_key=result_key):
                return True
            return self._kept_by_cancel(job_id, result_key)
        body = JobMessage(job_id=job_id, step="validate").model_dump_json()
        queue = self.jobs.queues.validation.name
        # The validation step's span continues the job's trace (the worker's current one).
        if self._store.hand_over(job_id, result_key, queue, body, trace_header=trace_header()):
            self.jobs.publish_pending(job_id=job_id)
            return False
        return self._kept_by_cancel(job_id, result_key)

    def _kept_by_cancel(self, job_id: str, result_key: str) -> bool:
        """A job cancelled while its last records were made keeps them all as its result, as
        one cancelled mid-run keeps those it made (True: its owner is to be told, once).

        The file holds every record, so it replaces a file kept meanwhile (a duplicate
        delivery's) unless that one was made after the last store too."""
        row = None
        for _ in range(KEEP_TRIES):
            row = self._store.get(job_id)
            if row is None or row.state not in ("cancelled", "failed"):
                break
            if kept_whole(row):
                break  # by another worker, or the dead-letter sweep
            kept, replaced = self._store.keep_partial_result(
                job_id, result_key, beat=row.heartbeat_at
            )
            if kept:
                self._delete_replaced(replaced, result_key)
                return replaced is None
        if row is None or row.result_key != result_key:  # never the file another one kept
            self._storage.delete(result_key)
        return False

    def keep_partial_result(self, job_id: str, result_key: str, *, beat: datetime | None) -> bool:
        """A cancelled or failed job keeps the records it made as its result, as an OpenAI
        batch does, in place of a file it kept before (deleted), unless a record was stored
        since ``beat``, its heartbeat read before the file's records were: False, and the file
        may lack that record."""
        kept, replaced = self._store.keep_partial_result(job_id, result_key, beat=beat)
        if kept:
            self._delete_replaced(replaced, result_key)
        return kept

    def _delete_replaced(self, replaced: str | None, result_key: str) -> None:
        if replaced and replaced != result_key:
            self._storage.delete(replaced)

    def worker_stopped(self, job_id: str) -> None:
        """The worker of an ended job has stopped: nothing more of it will be stored (an
        OpenAI batch is ``cancelling`` until then, else until its heartbeat is stale)."""
        self._store.worker_stopped(job_id)

    def _every_record_failed(self, job_id: str) -> str | None:
        """Why the job made no record, when none of its stored records is good."""
        if self._store.count_records(job_id, ok_only=True):
            return None
        failed = self._store.count_records(job_id)
        first = next(iter(self._store.iter_records(job_id, ok_only=False)), None)
        if first is not None and first.provenance.template_id == BATCH_TEMPLATE_ID:
            return None  # an OpenAI batch completes, its lines' failures in its error file
        reason = f"; the first: {first.error}" if first is not None and first.error else ""
        return f"every record failed ({failed}){reason}"

    # -- result files -----------------------------------------------------------------------
    def upload_result(self, job_id: str, fmt: str, path: Path, *, partial: bool = False) -> str:
        """Store the job's final file (uploaded in parts); returns its key. A ``partial`` file
        (a cancelled or failed job's) gets a key of its own: one made from fewer records never
        overwrites another."""
        key = Keys.kept_result(job_id, fmt) if partial else Keys.batch_result(job_id, fmt)
        content_type = _CONTENT_TYPES.get(fmt, "application/octet-stream")
        self._storage.put_file(key, path, content_type=content_type)
        return key

    def discard_result(self, key: str) -> None:
        self._storage.delete(key)

    def download_result(self, key: str, path: Path) -> None:
        self._storage.download(key, path)

    def provider_files(self, job_id: str) -> ProviderFiles:
        """The job's provider batch files (``generated/batch-jobs/<job>/provider/``)."""
        return ProviderFiles(self._storage, job_id)

    def upload_report(self, job_id: str, report_json: str) -> str:
        """Store the job's validation report; returns its key."""
        key = Keys.validation_result(job_id)
        self._storage.put_bytes(key, report_json.encode(), content_type="application/json")
        return key


class ProviderFiles:
    """A job's files of provider batch inference, under ``generated/batch-jobs/<job>/provider/``
    (``backends.batch.BatchFiles``): the inputs and outputs Bedrock reads and writes, and the
    worker's manifest of the provider batches it submitted."""

    def __init__(self, storage: BlobStorage, job_id: str) -> None:
        self._storage = storage
        self.prefix = f"{Keys.BATCH_JOBS}{job_id}/provider/"

    def key(self, name: str) -> str:
        return self.prefix + name

    def put(self, name: str, data: bytes) -> str:
        key = self.key(name)
        content_type = "application/json" if name.endswith(".json") else "application/x-ndjson"
        self._storage.put_bytes(key, data, content_type=content_type)
        return key

    def get(self, key: str) -> bytes:
        return self._storage.get_bytes(key)

    def find(self, name: str) -> bytes | None:
        key = self.key(name)
        return self._storage.get_bytes(key) if self._storage.exists(key) else None

    def list(self, key_prefix: str) -> list[str]:
        return self._storage.list(key_prefix)

    def s3_uri(self, key: str) -> str | None:
        bucket = getattr(self._storage, "bucket", None)  # S3Storage's; local storage has none
        return f"s3://{bucket}/{key}" if bucket else None
