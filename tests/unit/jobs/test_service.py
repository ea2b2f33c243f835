"""Submitting, idempotency, the outbox, status, cancel, results — on SQLite."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from tests.support.platform import job_service, run_worker
from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.errors import (
    Conflict,
    DatasetError,
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    NotFound,
    OutputError,
    TemplateNotFound,
)
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService
from textnlp.validation.gate import Gate
from textnlp.worker import Worker, WorkerOptions
from textnlp.worker.runner import JobRunner

ALICE = Owner(id="alice")
BOB = Owner(id="bob")


def spec(**kw: object) -> JobSpec:
    base: dict[str, object] = {"template": "product-review", "count": 20, "model": "fake-fast"}
    return JobSpec.model_validate({**base, **kw})


def test_submit_run_and_download(settings: Settings, jobs: JobService) -> None:
    view = jobs.submit(ALICE, spec(format="csv"))
    assert view.state == "queued" and view.progress.total == 20
    assert jobs.store.pending_messages() == []  # published at once
    assert run_worker(settings) == 1
    done = jobs.status(ALICE, view.id)
    assert done.state == "succeeded" and done.progress.done == 20
    assert done.result is not None and done.result.key.endswith(f"batch-jobs/{view.id}/records.csv")
    result = jobs.results(ALICE, view.id)
    text = jobs.storage.get_bytes(result.key).decode()
    assert len(text.strip().splitlines()) == 21  # header + 20 rows


def test_prompt_list_job(settings: Settings, jobs: JobService) -> None:
    prompts = ["Say hi", {"prompt": "Say bye", "variables": {"label": "b"}}]
    view = jobs.submit(ALICE, JobSpec.model_validate({"prompts": prompts, "model": "fake-fast"}))
    run_worker(settings)
    records = list(jobs.store.iter_records(view.id))
    assert [r.index for r in records] == [0, 1]
    assert records[1].variables["label"] == "b" and records[1].variables["prompt"] == "Say bye"


def test_idempotency_key(jobs: JobService) -> None:
    first = jobs.submit(ALICE, spec(), idempotency_key="k1")
    again = jobs.submit(ALICE, spec(), idempotency_key="k1")
    assert again.id == first.id
    with pytest.raises(InvalidInput, match="different request"):
        jobs.submit(ALICE, spec(count=21), idempotency_key="k1")
    assert jobs.submit(BOB, spec(), idempotency_key="k1").id != first.id  # keys are per user


def test_crash_between_store_and_send_loses_nothing(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: object, **kwargs: object) -> str:
        raise ConnectionError("queue down")

    monkeypatch.setattr(jobs.queues.generation, "send", down)
    view = jobs.submit(ALICE, spec())
    assert [m.job_id for m in jobs.store.pending_messages()] == [view.id]
    monkeypatch.undo()
    assert jobs.publish_pending() == 1
    message = jobs.queues.generation.receive(1)[0]
    assert view.id in message.body


def test_bad_input(jobs: JobService) -> None:
    with pytest.raises(TemplateNotFound):
        jobs.submit(ALICE, spec(template="nope"))
    with pytest.raises(ModelNotFound):
        jobs.submit(ALICE, spec(model="nope"))
    with pytest.raises(InvalidInput, match="maximum"):
        jobs.submit(ALICE, spec(count=5000))
    with pytest.raises(ValidationError, match="temperature"):  # refused by the spec itself
        spec(params={"temperature": 9})
    with pytest.raises(ValidationError, match="finite number"):  # not "less than 2"
        spec(params={"temperature": float("nan")})
    with pytest.raises(ValidationError, match="Extra inputs"):
        spec(params={"temprature": 0.5})
    with pytest.raises(InvalidInput, match="does not fit the context"):  # a model-bound check
        jobs.submit(ALICE, spec(params={"max_tokens": 4096}, model="smollm2-135m"))
    with pytest.raises(ValidationError, match="exactly one"):
        JobSpec.model_validate({})
    with pytest.raises(DatasetError, match="no prompts"):
        jobs.upload_prompts(ALICE, "empty.jsonl", b"\n")
    with pytest.raises(DatasetError, match="line 2"):
        jobs.upload_prompts(ALICE, "bad.jsonl", b'{"prompt": "a"}\n{oops\n')
    with pytest.raises(DatasetError, match="'prompt' column"):
        jobs.upload_prompts(ALICE, "bad.csv", b"text\nhello\n")
    other = jobs.upload_prompts(BOB, "p.csv", b"prompt\nhello\n")
    with pytest.raises(NotFound):
        jobs.submit(ALICE, JobSpec(prompt_file=other, model="fake-fast"))


def test_ownership_cancel_and_results(settings: Settings, jobs: JobService) -> None:
    view = jobs.submit(ALICE, spec())
    with pytest.raises(NotFound):
        jobs.status(BOB, view.id)
    with pytest.raises(NotFound):
        jobs.status(ALICE, "0" * 32)
    assert jobs.status(Owner(id="root", is_admin=True), view.id).id == view.id
    with pytest.raises(Conflict, match="queued"):
        jobs.results(ALICE, view.id)
    assert jobs.cancel(ALICE, view.id).state == "cancelled"
    assert jobs.cancel(ALICE, view.id).state == "cancelled"
    with pytest.raises(Conflict, match="cancelled"):
        jobs.results(ALICE, view.id)
    run_worker(settings)  # the cancelled job's message is dropped
    assert jobs.status(ALICE, view.id).state == "cancelled"
    assert jobs.queues.generation.receive(1) == []


def test_a_long_running_worker_waits_before_a_failed_jobs_next_attempt(
    settings: Settings, jobs: JobService
) -> None:
    """Its attempts came one after the other at once: a failure that lasted a minute (a model
    server restarting) failed the job for good within a second."""
    settings = settings.model_copy(
        update={"queue": settings.queue.model_copy(update={"retry_delay_s": 60})}
    )
    view = jobs.submit(ALICE, spec(model="poison", count=3))

    async def first_attempt() -> None:
        async with Platform(settings) as platform:
            worker = Worker(platform, WorkerOptions(wait_s=0.1))  # not --once
            running = asyncio.create_task(worker.run())
            while (row := jobs.store.get(view.id)) is None or row.error is None:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # time enough to take the job again, were it visible
            worker.request_stop()
            await asyncio.wait_for(running, 60)

    asyncio.run(first_attempt())
    waiting = jobs.status(ALICE, view.id)
    assert waiting.state == "running" and waiting.attempts == 1
    assert waiting.error is not None and "internal error (RuntimeError)" in waiting.error
    assert jobs.queues.generation.receive(1) == []  # its message waits out the delay


def test_malformed_message_goes_to_the_dead_letter_queue(
    settings: Settings, jobs: JobService
) -> None:
    jobs.queues.generation.send("{not json", group_id="x", dedup_id="x")
    run_worker(settings)
    dead = jobs.queues.generation.dead_letters(10)
    assert [m.body for m in dead] == ["{not json"]


def test_a_newer_releases_message_runs_or_fails_its_job(
    settings: Settings, jobs: JobService
) -> None:
    """While a deployment rolls, a newer release's messages reach this release's workers: a
    field it does not know is ignored (the job was left queued for ever, its message
    dead-lettered as malformed), and a message it cannot run fails its job with the reason."""
    queue = jobs.queues.generation
    extra = jobs.submit(ALICE, spec(count=2))
    unknown = jobs.submit(ALICE, spec(count=2))
    # The service's own messages, taken and left to expire:
    assert len(queue.receive(2, wait_s=1)) == 2
    for job_id, body in (
        (extra.id, {"job_id": extra.id, "step": "generate", "v": 1, "priority": 5}),
        (unknown.id, {"job_id": unknown.id, "step": "export", "v": 1}),
    ):
        queue.send(json.dumps(body), group_id=job_id, dedup_id=job_id + "-newer")
    run_worker(settings)
    assert jobs.status(ALICE, extra.id).state == "succeeded"
    failed = jobs.status(ALICE, unknown.id)
    assert failed.state == "failed" and "malformed message: step" in (failed.error or "")


def test_poison_job_fails_after_max_receives(settings: Settings, jobs: JobService) -> None:
    view = jobs.submit(ALICE, spec(model="poison", count=3))
    run_worker(settings)
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and failed.attempts == 3
    assert failed.error is not None and "internal error (RuntimeError)" in failed.error
    assert len(jobs.queues.generation.dead_letters(10)) == 1


def test_a_job_whose_input_is_wrong_fails_at_once(settings: Settings, jobs: JobService) -> None:
    # The provider refuses each request as invalid: a second attempt would meet the same 400.
    view = jobs.submit(ALICE, spec(model="refuses", count=3))
    run_worker(settings)
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and failed.attempts == 1
    assert failed.error == "InvalidRequest: the provider refused the request"
    # Deleted, not dead-lettered: the operators' alarm is not for a user's bad input.
    assert jobs.queues.generation.dead_letters(10) == []
    assert jobs.queues.generation.receive(1) == []


def test_a_job_that_fails_part_way_keeps_the_records_it_made(
    settings: Settings, jobs: JobService
) -> None:
    # Its 13th request is refused: the job fails at once, with the chunks stored before.
    view = jobs.submit(ALICE, spec(model="refuses-later", count=20))
    run_worker(settings)
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and "refused" in (failed.error or "")
    assert failed.result is not None
    kept = jobs.storage.get_bytes(jobs.results(ALICE, view.id).key).decode().splitlines()
    stored = [r.index for r in jobs.store.iter_records(view.id)]
    assert len(stored) >= 8 and [json.loads(line)["index"] for line in kept] == stored


def test_a_failed_job_whose_file_cannot_be_written_still_ends(
    settings: Settings, jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(runner: JobRunner, job_id: str, *, partial: bool = False) -> str:
        raise OutputError("cannot write the result: no space left on device")

    monkeypatch.setattr(JobRunner, "publish_stored", full_disk)
    view = jobs.submit(ALICE, spec(model="refuses-later", count=20))
    run_worker(settings)
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and failed.result is None
    assert "refused" in (failed.error or "")  # its own reason, not the disk's
    # Its message is gone (not only hidden): it does not come back for ever to a job that ended.
    assert jobs.queues.generation.counts() == {"queue": 0, "dead_letter": 0}  # type: ignore[attr-defined]


def test_a_job_failed_by_its_gate_offers_its_dataset_beside_the_report(
    settings: Settings, jobs: JobService
) -> None:
    view = jobs.submit(ALICE, spec(count=5, validation={"min_records": 6}))
    run_worker(settings)  # generation, then the validation step
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed"
    assert "validation gate failed: min_records" in (failed.error or "")
    assert failed.result is not None and failed.result.validation_key
    kept = jobs.storage.get_bytes(jobs.results(ALICE, view.id).key).decode().splitlines()
    assert len(kept) == 5


def test_a_job_that_failed_before_any_record_has_no_result(
    settings: Settings, jobs: JobService
) -> None:
    view = jobs.submit(ALICE, spec(model="refuses", count=3))
    run_worker(settings)
    assert jobs.status(ALICE, view.id).result is None
    with pytest.raises(Conflict, match="failed with no record kept: InvalidRequest"):
        jobs.results(ALICE, view.id)


def test_a_job_on_a_model_that_cannot_run_here_is_refused_at_submit(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its API key is not set: refused now, not failed after every attempt of the worker.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = JobSpec(template="news-headline", count=2, model="gpt-4o-mini")
    with pytest.raises(ModelUnavailable, match="gpt-4o-mini is not available here"):
        jobs.submit(ALICE, spec)
    assert jobs.store.list_for(ALICE.id) == [] and jobs.store.pending_messages(10) == []


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999])
def test_a_job_seed_is_a_request_seed(seed: int) -> None:
    # The console's job form took any integer; requests take 0..2**32-1.
    with pytest.raises(ValidationError, match="seed"):
        JobSpec.model_validate({"template": "news-headline", "count": 1, "seed": seed})


def test_count_belongs_to_template_jobs() -> None:
    # A prompt list's count was ignored: 5 asked, 1 made.
    with pytest.raises(ValidationError, match="count applies to template jobs"):
        JobSpec.model_validate({"prompts": ["Say hi."], "count": 5})


def test_an_idempotency_key_stands_for_the_request_however_it_is_written(
    jobs: JobService,
) -> None:
    # The CLI sends every default, curl only what the user typed: the same request.
    typed = {"template": "news-headline", "count": 1, "params": {"max_tokens": 4}}
    spelled = {**typed, "format": "jsonl", "seed": 0, "variables": {}}
    first = jobs.submit(ALICE, JobSpec.model_validate(typed), idempotency_key="idem-y")
    again = jobs.submit(ALICE, JobSpec.model_validate(spelled), idempotency_key="idem-y")
    assert again.id == first.id
    other = {**typed, "seed": 1}
    with pytest.raises(InvalidInput, match="different request"):
        jobs.submit(ALICE, JobSpec.model_validate(other), idempotency_key="idem-y")


def test_an_archived_result_is_linked_through_the_api_not_a_presigned_url(
    settings: Settings, jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A presigned URL to a file the lifecycle moved to Glacier is S3's 403: past the
    deployment's ``storage.archive_after_days`` the view offers none (the API then links its
    results route, which answers 409 archived and starts the restore)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from textnlp.adapters.db.jobs import JobRow

    view = jobs.submit(ALICE, spec(count=3))
    run_worker(settings)
    monkeypatch.setattr(
        jobs.storage, "presigned_url", lambda key, expires_s=3600: f"https://s3/{key}"
    )
    assert jobs.status(ALICE, view.id).result.url is not None  # type: ignore[union-attr]
    archived = settings.model_copy(
        update={"storage": settings.storage.model_copy(update={"archive_after_days": 90})}
    )
    monkeypatch.setattr(jobs, "settings", archived)
    assert jobs.status(ALICE, view.id).result.url is not None  # type: ignore[union-attr]
    with jobs.store.sessions.begin() as session:
        old = datetime.now(UTC) - timedelta(days=91)
        session.execute(update(JobRow).where(JobRow.id == view.id).values(finished_at=old))
    assert jobs.status(ALICE, view.id).result.url is None  # type: ignore[union-attr]


def test_a_prompt_file_is_checked_at_submit_as_a_stream(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submitting a 200 MB file held it whole, then every parsed line (3.4 KB each): gigabytes
    of the API's memory per request. It is read in chunks now, each prompt counted and
    dropped."""
    lines = [json.dumps({"prompt": f"Say {i}", "label": i % 3}) for i in range(900)]
    key = jobs.upload_prompts(ALICE, "many.jsonl", ("\n".join(lines) + "\n").encode())

    def whole(key: str) -> bytes:
        raise AssertionError(f"{key} read whole")

    monkeypatch.setattr(jobs.storage, "get_bytes", whole)
    view = jobs.submit(ALICE, JobSpec(prompt_file=key, model="fake-fast"))
    assert view.progress.total == 900
    csv_key = jobs.upload_prompts(ALICE, "one.csv", b'prompt,label\n"hi,\nthere",a\n')
    assert jobs.submit(ALICE, JobSpec(prompt_file=csv_key, model="fake-fast")).progress.total == 1


def test_a_gate_counts_the_records_that_failed(settings: Settings, jobs: JobService) -> None:
    """A failed record is in no result file, so the gate read only the others: a job whose
    records half failed (invalid JSON, cut short, refused) passed every rule. The records the
    job asked for are the gate's too (``max_missing_rate``)."""
    prompts = [f"prompt {i}" for i in range(16)]  # the model refuses those after its 12th
    view = jobs.submit(ALICE, JobSpec(prompts=prompts, model="refuses-later", validation=Gate()))
    run_worker(settings)
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed"
    assert failed.error == "validation gate failed: max_missing_rate"
    assert failed.progress.failed == 4


def test_a_job_is_never_answered_from_another_users_job(settings: Settings) -> None:
    """The response cache is shared by every worker: a job's seeded record was a hit on another
    user's job (telling them what was asked, and what it was answered, for free)."""
    cached = settings.model_copy(
        update={"generation": settings.generation.model_copy(update={"response_cache": True})}
    )
    same = JobSpec(prompts=["the merger closes on"], model="fake-fast", seed=4242)
    with job_service(cached) as jobs:
        ids = []
        for owner in (ALICE, BOB, ALICE):
            ids.append(jobs.submit(owner, same).id)
            run_worker(cached)
        hits = [next(jobs.store.iter_records(job_id)).provenance.cached for job_id in ids]
    assert hits == [False, False, True]  # alice's own re-run still finds her record


def test_two_cancels_at_once_both_answer_the_cancelled_job(
    jobs: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other cancel wins between this one's read and its write: this one answered 409 "has
    ended (cancelled)", though a cancel of a cancelled job answers the job."""
    view = jobs.submit(ALICE, spec(count=2))
    finish = jobs.store.finish

    def after_the_other_cancel(job_id: str, state: str, **kwargs: object) -> bool:
        finish(job_id, "cancelled", error="cancelled by the user")
        return finish(job_id, state, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs.store, "finish", after_the_other_cancel)
    assert jobs.cancel(ALICE, view.id).state == "cancelled"
