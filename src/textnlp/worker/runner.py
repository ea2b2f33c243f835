"""One job, start to finish: resume from the stored records, generate the missing ones in
checkpointed chunks, write the final file from the store, upload it, validate, notify. A job
whose records are all stored already (its worker died after the last chunk) is only published.

Why the records live in the database rather than in a local journal: workers on different
machines (ECS tasks, spot capacity) take over each other's jobs; a local file dies with its
task, a row keyed by (job id, index) does not, and ``ON CONFLICT DO NOTHING`` makes a second
writer of the same record harmless. The pipeline's own journal is seeded from the store at the
start of every attempt, so the pipeline itself skips the finished indices.

Spending caps: the model runs under the job's cap (seeded with the cost of the records already
stored, so a resumed job continues with what it had left) and under its owner's remaining
budget, which learns at every checkpoint what the owner's other work has spent meanwhile. A
cap that would be passed stops the pipeline: the records in flight finish, the last chunk is
stored, and the ``QuotaExceeded`` reaches the consumer, which fails the job.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from textnlp.adapters.storage import Keys
from textnlp.errors import DatasetError
from textnlp.generation.journal import RunJournal, journal_path
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.templates import PromptTemplate
from textnlp.generation.writers import write_dataset
from textnlp.services.generation import GenerationService
from textnlp.services.job_models import JobSpec
from textnlp.services.job_prompts import normalise, parse_prompt_file, prompt_list_template
from textnlp.services.jobs import JobService
from textnlp.worker.checkpoint import Checkpointer, StopJob, unwrap

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, jobs: JobService, generation: GenerationService, *, chunk_size: int) -> None:
        self.jobs = jobs
        self.generation = generation
        self.chunk_size = chunk_size

    def template(self, spec: JobSpec) -> PromptTemplate:
        if spec.template is not None:
            return self.generation.templates.get(spec.template)
        if spec.prompts:
            return prompt_list_template(normalise(spec.prompts))
        key = spec.prompt_file or ""
        return prompt_list_template(parse_prompt_file(key, self.jobs.storage.get_bytes(key)))

    async def run(self, job_id: str, stop: asyncio.Event, checkpointer: Checkpointer) -> str:
        """Generate and store the job's result; returns its result key.

        Raises ``StopJob`` when cancelled or shut down at a checkpoint, anything else when the
        attempt failed.
        """
        store = self.jobs.store
        row = store.get(job_id)
        assert row is not None
        if store.count_records(job_id) >= row.total:
            # Every record is stored (a worker died after the last chunk): no model needed.
            return await asyncio.to_thread(self.publish_stored, job_id)
        spec = JobSpec.model_validate(row.spec)
        workdir = Path(tempfile.mkdtemp(prefix=f"textnlp-job-{job_id[:8]}-"))
        try:
            output = workdir / f"records.{spec.format}"
            self._seed_journal(job_id, output)
            template = self.template(spec)
            model_id = spec.model or self.jobs.settings.default_model
            request = DatasetRequest(
                template=template,
                count=row.total,
                output=output,
                params=spec.params.given(),
                variables=dict(spec.variables),
                seed=spec.seed,
                concurrency=self.jobs.settings.generation.concurrency,
                resume=True,
                json_retries=self.jobs.settings.generation.json_retries,
            )
            backend = await self.generation.pool.get(model_id)
            job_cap, user_cap = self.jobs.caps(row)
            if user_cap is not None:
                # Other jobs and requests of the owner spend from the same budget: learn what
                # they spent at every checkpoint, so together they pass the cap by a chunk at
                # most, not by a whole job each.
                owner = row.owner_id
                checkpointer.after_flush = lambda: user_cap.observe_spent(
                    self.jobs.spending.spent(owner)
                )
            backend = self.generation.capped(backend, job_cap, user_cap)
            pipeline = DatasetPipeline(backend, self.generation.cache)
            try:
                await pipeline.run(request, checkpointer.on_record)
            except BaseExceptionGroup as group:  # the pipeline's TaskGroup wraps errors
                raise unwrap(group) from None
            finally:
                checkpointer.flush()
            stored = store.count_records(job_id)
            if stored != row.total:
                raise DatasetError(f"job {job_id} has {stored} of {row.total} records stored")
            return await asyncio.to_thread(self._publish, job_id, spec, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _seed_journal(self, job_id: str, output: Path) -> None:
        journal = RunJournal(journal_path(output))
        journal.open(fresh=True)
        try:
            for record in self.jobs.store.iter_records(job_id, ok_only=False):
                journal.append(record)
        finally:
            journal.close()

    def publish_stored(self, job_id: str) -> str:
        """The result of a job whose every record is stored; returns its key."""
        row = self.jobs.store.get(job_id)
        assert row is not None
        workdir = Path(tempfile.mkdtemp(prefix=f"textnlp-publish-{job_id[:8]}-"))
        try:
            return self._publish(job_id, JobSpec.model_validate(row.spec), workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _publish(self, job_id: str, spec: JobSpec, workdir: Path) -> str:
        """The final file from the store (every index once, in order), uploaded in parts."""
        final = workdir / f"final.{spec.format}"
        write_dataset(final, self.jobs.store.iter_records(job_id))
        key = Keys.batch_result(job_id, spec.format)
        self.jobs.storage.put_file(key, final, content_type=_content_type(spec.format))
        return key

    def validate(self, job_id: str, spec: JobSpec, result_key: str) -> tuple[str, str | None]:
        """Run the validation gate on the result; returns (report key, failure or None)."""
        from textnlp.validation import validate_dataset

        workdir = Path(tempfile.mkdtemp(prefix="textnlp-validate-"))
        try:
            local = workdir / f"records.{spec.format}"
            self.jobs.storage.download(result_key, local)
            report = validate_dataset(local, gate=spec.validation, embeddings=False)
            key = Keys.validation_result(job_id)
            self.jobs.storage.put_bytes(
                key, report.model_dump_json(indent=2).encode(), content_type="application/json"
            )
            failed = [r.rule for r in report.gate.rules if r.status == "fail"]
            return key, ("validation gate failed: " + ", ".join(failed)) if failed else None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _content_type(fmt: str) -> str:
    types: dict[str, Any] = {
        "jsonl": "application/x-ndjson",
        "csv": "text/csv",
        "parquet": "application/vnd.apache.parquet",
    }
    return str(types.get(fmt, "application/octet-stream"))


__all__ = ["JobRunner", "StopJob"]
