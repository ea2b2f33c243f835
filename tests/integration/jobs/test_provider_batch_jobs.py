"""Jobs with ``provider_batch`` through the real worker, job store and S3 storage (moto), each
provider faked at its transport (``tests.support.provider_batches``): the happy path at the
batch price, a partial failure and an expired batch (the missing records generated online,
every index exactly once), an answer that breaks the template's schema (repaired online), a
cancel that cancels the provider batch, a batch that failed as a whole, Bedrock's
``CreateModelInvocationJob`` and SageMaker's ``CreateTransformJob`` (moto's job records) with
their files in the platform's bucket, and, for each provider, a submit whose answer never
reached the worker: the next attempt finds the batch the provider made instead of paying for a
second one."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.holds import held_by
from tests.support.platform import job_service
from tests.support.provider_batches import (
    MODELS_YAML,
    PRICE,
    WORLD,
    batch_cost,
    online_cost,
    register,
)
from textnlp.adapters.db.jobs import JobRow
from textnlp.adapters.db.spending import SpendingStore
from textnlp.backends.base import Backend
from textnlp.backends.batch import BatchFiles, BatchProvider, batch_provider
from textnlp.bootstrap import Platform
from textnlp.cli.jobs_client import LOCAL_OWNER
from textnlp.config import Settings, load_settings
from textnlp.errors import Conflict, InvalidParameter, ServiceUnavailable
from textnlp.services.job_models import JobSpec, JobView
from textnlp.worker import Worker, WorkerOptions
from textnlp.worker.outages import Patience
from textnlp.worker.provider_batch import Polling, ProviderBatches

ROLE = "arn:aws:iam::123456789012:role/textnlp-bedrock-batch"
PROMPTS = [f"Say something about fruit number {i}." for i in range(10)]
#: The SageMaker endpoint of ``llama-batch`` (``MODELS_YAML``) and its variant's model.
ENDPOINT = "textnlp-batch-endpoint"
SAGEMAKER_MODEL = "textnlp-llama-7b-model"


@pytest.fixture
def settings(tmp_path: Path, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    register()
    WORLD.reset()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_YAML)
    bucket = f"textnlp-batch-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=aws_env)
    s3.create_bucket(Bucket=bucket)
    WORLD.s3 = s3
    WORLD.sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=aws_env)
    ensure_endpoint(WORLD.sagemaker)
    prices = dict.fromkeys(("gpt-batch", "claude-batch", "claude-bedrock-batch"), PRICE)
    yield load_settings(
        home=tmp_path / "home",
        models_file=models,
        storage={"backend": "s3", "bucket": bucket},
        aws={"region": "us-east-1", "endpoint_url": aws_env},
        models={"prices": prices, "bedrock_batch_role_arn": ROLE, "max_attempts": 1},
        generation={"response_cache": False, "concurrency": 4},
        queue={"chunk_size": 4},
    )
    WORLD.reset()


def ensure_endpoint(client: Any) -> None:
    """The SageMaker model, endpoint config and endpoint ``llama-batch`` is served by (moto
    keeps them for the server's life)."""
    from botocore.exceptions import ClientError

    try:
        client.describe_endpoint(EndpointName=ENDPOINT)
        return
    except ClientError:
        pass
    client.create_model(
        ModelName=SAGEMAKER_MODEL,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/textnlp-sagemaker-execution",
        PrimaryContainer={"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tgi:2.0"},
    )
    client.create_endpoint_config(
        EndpointConfigName=ENDPOINT,
        ProductionVariants=[
            {
                "VariantName": "gpt-j-6b",
                "ModelName": SAGEMAKER_MODEL,
                "InstanceType": "ml.g4dn.2xlarge",
                "InitialInstanceCount": 1,
            },
            {
                "VariantName": "llama-7b",
                "ModelName": SAGEMAKER_MODEL,
                "InstanceType": "ml.g4dn.12xlarge",
                "InitialInstanceCount": 1,
            },
        ],
    )
    client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)


def submit(settings: Settings, **spec: Any) -> str:
    with job_service(settings) as service:
        view = service.submit(LOCAL_OWNER, JobSpec.model_validate({"provider_batch": True, **spec}))
    return view.id


#: One attempt per call, as the platform's own clients (``aws_common.make_client``): a retry
#: by botocore would hide a create whose answer was lost.
ONCE = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def bedrock_client(endpoint: str | None) -> Any:
    client = boto3.client("bedrock", region_name="us-east-1", endpoint_url=endpoint, config=ONCE)
    client.meta.events.register("before-send", WORLD.bedrock_control)
    return client


def run_worker(settings: Settings, concurrency: int = 1) -> None:
    """A real worker (``once``), polling the fake providers every few milliseconds."""

    async def go() -> None:
        async with Platform(settings) as platform:
            options = WorkerOptions(once=True, wait_s=0.2, concurrency=concurrency)
            worker = Worker(platform, options, gpu_sampler=None)
            worker.runner.provider_batches = ProviderBatches(
                platform.job_runs,
                settings,
                polling=Polling(first_s=0.01, max_s=0.02),
                provider_factory=fake_providers(settings),
            )
            await worker.run()

    asyncio.run(go())


def fake_providers(settings: Settings) -> Callable[[Backend, BatchFiles], BatchProvider]:
    """The batch API of each fake model, Bedrock's and SageMaker's control planes included."""

    def provider(backend: Backend, files: BatchFiles) -> BatchProvider:
        endpoint = settings.aws.endpoint_url
        sagemaker = boto3.client(
            "sagemaker", region_name="us-east-1", endpoint_url=endpoint, config=ONCE
        )
        sagemaker.meta.events.register("before-send", WORLD.sagemaker_control)
        return batch_provider(
            backend,
            files,
            bedrock_role_arn=ROLE,
            bedrock_client=bedrock_client(endpoint),
            sagemaker_client=sagemaker,
        )

    return provider


def finished(settings: Settings, job_id: str) -> tuple[JobView, list[dict[str, Any]]]:
    with job_service(settings) as service:
        view = service.status(LOCAL_OWNER, job_id)
        if view.state != "succeeded":
            return view, []
        data = b"".join(service.result_chunks(service.results(LOCAL_OWNER, job_id)))
    return view, [json.loads(line) for line in data.decode().splitlines()]


def test_openai_batch_job_answers_every_record_at_the_batch_price(settings: Settings) -> None:
    job_id = submit(settings, prompts=PROMPTS, model="gpt-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(10))
    assert [r["text"] for r in records] == [f"batch answer {i}" for i in range(10)]
    assert WORLD.online == [] and len(WORLD.submitted) == 1
    sent = WORLD.submitted[0]
    assert [line["custom_id"] for line in sent] == [f"record-{i}" for i in range(10)]
    assert all(line["url"] == "/v1/chat/completions" for line in sent)
    assert sent[3]["body"]["messages"][-1]["content"] == PROMPTS[3]
    assert view.progress.done == 10
    assert view.cost_usd == pytest.approx(10 * batch_cost())
    assert batch_cost() == pytest.approx(online_cost() * 0 + 0.025)  # half of 0.05 online
    # The manifest of the provider batch stays with the job's files.
    with job_service(settings) as service:
        keys = service.storage.list(f"generated/batch-jobs/{job_id}/provider/")
    assert keys == [f"generated/batch-jobs/{job_id}/provider/manifest.json"]


def test_openai_partial_failure_retries_the_errored_records_online(settings: Settings) -> None:
    WORLD.errored = {2, 7}
    job_id = submit(settings, prompts=PROMPTS, model="gpt-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(10))  # every index, once
    online = {r["index"] for r in records if r["text"].startswith("online")}
    assert online == {2, 7}
    assert sorted(WORLD.online) == sorted(PROMPTS[i] for i in (2, 7))
    assert view.cost_usd == pytest.approx(8 * batch_cost() + 2 * online_cost())


def test_openai_expired_batch_runs_the_missing_records_online(settings: Settings) -> None:
    WORLD.final_status = "expired"
    WORLD.unprocessed = {4, 5, 6, 9}  # 4 and 6 have batch_expired lines, 5 and 9 nothing
    job_id = submit(settings, prompts=PROMPTS, model="gpt-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(10))
    assert {r["index"] for r in records if r["text"].startswith("online")} == {4, 5, 6, 9}
    assert len(WORLD.online) == 4


def test_schema_invalid_batch_answers_are_repaired_online(settings: Settings) -> None:
    WORLD.invalid = {1, 3}
    job_id = submit(settings, template="qa-pairs", count=6, model="gpt-batch", seed=5)
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(6))
    assert all(r["status"] == "ok" and r["data"]["answer"] for r in records)
    repaired = {r["index"] for r in records if r["provenance"]["attempts"] == 2}
    assert repaired == {1, 3} and len(WORLD.online) == 2
    assert records[0]["data"]["question"] == "batch question 0?"


def test_cancel_cancels_the_provider_batch(settings: Settings) -> None:
    WORLD.polls_before_end = 1000
    job_id = submit(settings, prompts=PROMPTS, model="gpt-batch")

    with job_service(settings) as service:  # opened outside the worker's event loop

        def cancel_at_second_poll() -> None:
            if WORLD.polls == 2:
                service.cancel(LOCAL_OWNER, job_id)

        WORLD.on_poll = cancel_at_second_poll
        run_worker(settings)
    view, _ = finished(settings, job_id)
    assert view.state == "cancelled"
    assert WORLD.cancelled == ["batch_abc123"]
    assert view.progress.done == 0 and WORLD.online == []


def test_a_batch_that_failed_whole_fails_the_job_with_its_reason(settings: Settings) -> None:
    WORLD.final_status = "failed"
    job_id = submit(settings, prompts=PROMPTS[:3], model="gpt-batch")
    run_worker(settings)
    view, _ = finished(settings, job_id)
    assert view.state == "failed"
    assert view.error is not None and "invalid_json_line" in view.error
    assert len(WORLD.submitted) == 1  # later attempts re-attach to the batch, never resubmit
    assert WORLD.online == []
    with job_service(settings) as service:  # the batch ended: nothing of it is held
        assert held_by(service.store, job_id) == 0.0


def test_anthropic_message_batch_with_errored_and_expired_results(settings: Settings) -> None:
    WORLD.errored = {0}
    WORLD.unprocessed = {8}
    job_id = submit(settings, prompts=PROMPTS, model="claude-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(10))
    assert {r["index"] for r in records if r["text"].startswith("online")} == {0, 8}
    sent = WORLD.submitted[0]
    # The job and part travel in the custom ids (a Message Batch takes no metadata).
    assert sent[1]["custom_id"] == f"j{job_id}p0-1"
    assert sent[1]["params"]["model"] == "claude-sonnet-4-5"
    assert sent[1]["params"]["messages"][0]["content"][0]["text"] == PROMPTS[1]
    assert view.cost_usd == pytest.approx(8 * batch_cost() + 2 * online_cost())


def test_bedrock_invocation_job_through_the_platform_bucket(settings: Settings) -> None:
    WORLD.final_status = "PartiallyCompleted"
    WORLD.errored = {3}
    WORLD.unprocessed = {50}
    count = 100  # Bedrock's least records per job
    job_id = submit(settings, template="product-review", count=count, model="claude-bedrock-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(count))
    assert {r["index"] for r in records if r["text"].startswith("online")} == {3, 50}
    sent = WORLD.submitted[0]
    assert sent[7]["recordId"] == "R0000000007"
    assert sent[7]["modelInput"]["anthropic_version"] == "bedrock-2023-05-31"
    job = WORLD._job  # the CreateModelInvocationJob request
    assert job["roleArn"] == ROLE and job["modelId"] == "anthropic.claude-3-haiku-20240307-v1:0"
    prefix = f"s3://{settings.storage.bucket}/generated/batch-jobs/{job_id}/provider/"
    assert job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"] == f"{prefix}input/part-0.jsonl"
    assert job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"] == f"{prefix}output/part-0/"
    assert job["clientRequestToken"] == f"{job_id}-0"
    assert view.cost_usd == pytest.approx(98 * batch_cost() + 2 * online_cost())


def test_bedrock_job_below_the_minimum_runs_online(settings: Settings) -> None:
    job_id = submit(settings, prompts=PROMPTS[:3], model="claude-bedrock-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert len(records) == 3 and len(WORLD.online) == 3 and WORLD.submitted == []


def test_provider_batch_is_refused_where_there_is_none(settings: Settings) -> None:
    with pytest.raises(InvalidParameter, match="no provider batch"):
        submit(settings, prompts=PROMPTS, model="smollm2-135m")


@pytest.mark.parametrize("model", ["gpt-batch", "claude-batch"])
def test_a_batch_whose_submit_answer_was_lost_is_found_not_paid_twice(
    settings: Settings, model: str
) -> None:
    WORLD.drop_create = True  # the provider makes the batch; the worker never hears of it
    job_id = submit(settings, prompts=PROMPTS, model=model)
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert len(WORLD.created) == 1 and len(WORLD.submitted) == 1  # one batch, paid once
    assert [r["text"] for r in records] == [f"batch answer {i}" for i in range(10)]
    assert WORLD.online == []
    with job_service(settings) as service:
        raw = service.storage.get_bytes(f"generated/batch-jobs/{job_id}/provider/manifest.json")
    part = json.loads(raw)["parts"][0]
    assert part["batch_id"] == WORLD.created[0] and part["submit_started"] is not None


def test_bedrock_job_whose_create_answer_was_lost_is_found_by_name(settings: Settings) -> None:
    WORLD.final_status = "Completed"
    WORLD.drop_create = True
    job_id = submit(settings, prompts=PROMPTS * 10, model="claude-bedrock-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert len(records) == 100 and WORLD.online == []
    assert len(WORLD.created) == 1 and WORLD._job["jobName"] == f"textnlp-{job_id}-part-0"


def test_sagemaker_batch_transform_through_the_platform_bucket(settings: Settings) -> None:
    WORLD.unprocessed = {2}
    WORLD.invalid = {5}  # a line whose SageMakerOutput is no TGI answer
    job_id = submit(settings, prompts=PROMPTS, model="llama-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(10))  # every index, once
    online = {r["index"] for r in records if r["text"].startswith("online")}
    assert online == {2, 5} and len(WORLD.online) == 2
    assert records[7]["text"] == "batch answer 7"
    sent = WORLD.submitted[0]
    assert sent[3]["id"] == "record-3"
    assert PROMPTS[3] in sent[3]["body"]["inputs"]  # the online backend's TGI body
    assert sent[3]["body"]["parameters"]["max_new_tokens"] == 64
    job = WORLD._transform  # the CreateTransformJob request
    assert job["TransformJobName"] == f"textnlp-{job_id}-part-0"
    assert job["ModelName"] == SAGEMAKER_MODEL
    assert job["TransformResources"] == {"InstanceType": "ml.g4dn.12xlarge", "InstanceCount": 1}
    prefix = f"s3://{settings.storage.bucket}/generated/batch-jobs/{job_id}/provider/"
    source = job["TransformInput"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == f"{prefix}input/part-0.jsonl"
    assert job["TransformInput"]["SplitType"] == "Line"
    assert job["TransformOutput"]["S3OutputPath"] == f"{prefix}output/part-0"
    assert job["DataProcessing"]["JoinSource"] == "Input"
    # moto keeps the job record the worker polled.
    described = WORLD.sagemaker.describe_transform_job(TransformJobName=job["TransformJobName"])
    assert described["TransformJobStatus"] == "Completed"


def test_sagemaker_transform_whose_create_answer_was_lost_is_found(settings: Settings) -> None:
    # The failed create looks the job up by its name at once (the same attempt goes on).
    WORLD.drop_create = True
    job_id = submit(settings, prompts=PROMPTS[:4], model="llama-batch")
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["text"] for r in records] == [f"batch answer {i}" for i in range(4)]
    assert WORLD.created == [f"textnlp-{job_id}-part-0"] and WORLD.online == []


def test_a_failed_bedrock_job_fails_the_job_without_the_account_id(settings: Settings) -> None:
    """A Bedrock job id is an ARN (and its message may name a role's): the job's error is its
    owner's to read, the account id is the deployment's."""
    WORLD.final_status = "Failed"
    job_id = submit(settings, template="product-review", count=100, model="claude-bedrock-batch")
    run_worker(settings)
    view, _ = finished(settings, job_id)
    assert view.state == "failed"
    assert view.error is not None and "Model validation failed" in view.error
    assert "model-invocation-job" in view.error and "<account>" in view.error
    assert not re.search(r"\d{12}", view.error), view.error


def test_a_failed_bedrock_jobs_reason_keeps_the_platforms_buckets_and_roles_in_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Bedrock's reason names the platform's bucket, keys and the role it assumed: the job's
    owner reads the reason without them, the worker's log keeps the whole text."""
    WORLD.final_status = "Failed"
    WORLD.failure_message = (
        "Access denied when reading s3://acme-internal-batch/jobs/in/part-0.jsonl with role "
        f"{ROLE}. Check the role's permissions."
    )
    job_id = submit(settings, template="product-review", count=100, model="claude-bedrock-batch")
    run_worker(settings)
    view, _ = finished(settings, job_id)
    assert view.state == "failed" and view.error is not None
    assert "Access denied when reading <S3 location> with role <iam ARN>" in view.error
    for internal in ("acme-internal-batch", "part-0.jsonl", "textnlp-bedrock-batch"):
        assert internal not in view.error, view.error
    assert "s3://acme-internal-batch/jobs/in/part-0.jsonl" in caplog.text
    assert "role/textnlp-bedrock-batch" in caplog.text


def test_a_job_deleted_while_its_batch_runs_cancels_the_batch(settings: Settings) -> None:
    """Cancelled, then deleted while the worker waited between polls (a wait of up to
    ``Polling.max_s``, longer than the heartbeat a delete takes for a live worker's): the
    worker cancels the provider batch and writes no file of the deleted job again."""
    WORLD.polls_before_end = 1000
    job_id = submit(settings, prompts=PROMPTS, model="gpt-batch")

    with job_service(settings) as service:  # opened outside the worker's event loop

        def delete_at_second_poll() -> None:
            if WORLD.polls != 2:
                return
            service.cancel(LOCAL_OWNER, job_id)
            with service.store.sessions.begin() as session:  # its worker looks gone
                row = session.get(JobRow, job_id)
                assert row is not None
                row.heartbeat_at = datetime.now(UTC) - timedelta(hours=1)
            service.delete(LOCAL_OWNER, job_id)

        WORLD.on_poll = delete_at_second_poll
        run_worker(settings)
        assert service.store.get(job_id) is None
        assert service.storage.list(f"generated/batch-jobs/{job_id}/") == []
    assert WORLD.cancelled == ["batch_abc123"]
    assert WORLD.online == []


def test_a_capped_job_keeps_every_answer_its_batch_paid_for(settings: Settings) -> None:
    """The batch's worst case fits the job's cap ($0.26 for 10 records of at most 20 tokens at
    half the online price), so it is submitted and paid for: every answer it paid for is kept
    and counted, none refused by the cap as if it were still to be bought online (at the online
    price's worst case), which failed the job with a paid answer unstored and uncounted."""
    job_id = submit(
        settings, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20}, max_cost_usd=0.26
    )
    run_worker(settings)
    view, records = finished(settings, job_id)
    assert view.state == "succeeded", view.error
    assert [r["index"] for r in records] == list(range(10)) and WORLD.online == []
    assert view.cost_usd == pytest.approx(10 * batch_cost())


def test_batches_of_one_owner_running_together_never_pass_the_owners_cap(
    settings: Settings,
) -> None:
    """Each batch's worst case ($0.26) fits the owner's $0.40 cap alone, not both together:
    the first holds its worst case while it runs, so the second is refused before it is
    submitted (both were submitted, and paid, for $0.50)."""
    WORLD.polls_before_end = 20
    capped = settings.model_copy(
        update={"models": settings.models.model_copy(update={"user_spending_cap_usd": 0.4})}
    )
    body = {"prompts": PROMPTS, "model": "gpt-batch", "params": {"max_tokens": 20}}
    jobs = [submit(capped, **body, seed=seed) for seed in (1, 2)]
    run_worker(capped, concurrency=2)
    views = [finished(capped, job_id)[0] for job_id in jobs]
    assert sorted(v.state for v in views) == ["failed", "succeeded"], [v.error for v in views]
    refused = next(v for v in views if v.state == "failed")
    assert "spending cap of user" in (refused.error or "") and refused.cost_usd is None
    assert len(WORLD.submitted) == 1
    assert sum(v.cost_usd or 0.0 for v in views) == pytest.approx(10 * batch_cost())


def run_until_first_poll(settings: Settings) -> None:
    """A worker that is stopped (a deploy's SIGTERM) at its job's first poll of the batch."""

    async def go() -> None:
        async with Platform(settings) as platform:
            worker = Worker(platform, WorkerOptions(once=True, wait_s=0.2), gpu_sampler=None)
            worker.runner.provider_batches = ProviderBatches(
                platform.job_runs,
                settings,
                polling=Polling(first_s=0.01, max_s=0.02),
                provider_factory=fake_providers(settings),
            )
            WORLD.on_poll = worker.request_stop
            await worker.run()

    try:
        asyncio.run(go())
    finally:
        WORLD.on_poll = None


def test_a_batch_still_running_holds_its_worst_case_across_a_worker_restart(
    settings: Settings,
) -> None:
    """A worker stopped while its job's batch runs (up to 24 hours) hands the job back with
    the batch's worst case (about $0.25) still held, and the worker that takes it over holds it
    again: the owner's second batch does not fit their $0.40 cap beside it (the hold was
    dropped at the stop, and two batches were submitted and paid for $0.50)."""
    WORLD.polls_before_end = 20
    capped = settings.model_copy(
        update={"models": settings.models.model_copy(update={"user_spending_cap_usd": 0.4})}
    )
    body = {"prompts": PROMPTS, "model": "gpt-batch", "params": {"max_tokens": 20}}
    first = submit(capped, **body, seed=1)
    run_until_first_poll(capped)
    with job_service(capped) as service:
        row = service.store.get(first)
        assert row is not None and row.state == "running" and len(WORLD.submitted) == 1
        worst = held_by(service.store, first)
        assert 0.4 / 2 < worst <= 0.4, worst  # it fits the cap once, not twice
    second = submit(capped, **body, seed=2)
    held: list[float] = []

    def first_holds() -> float | None:
        with job_service(capped) as service:
            row = service.store.get(first)
            running = row is not None and row.state == "running"
            return held_by(service.store, first) if running else None

    def note_first_holds() -> None:  # polled on the worker's loop: read from a thread
        with ThreadPoolExecutor(1) as pool:
            now = pool.submit(first_holds).result()
        if now is not None:
            held.append(now)

    WORLD.on_poll = note_first_holds
    try:
        run_worker(capped)
    finally:
        WORLD.on_poll = None
    assert held and all(h == pytest.approx(worst) for h in held), held
    views = {job_id: finished(capped, job_id)[0] for job_id in (first, second)}
    assert views[first].state == "succeeded", views[first].error
    assert views[second].state == "failed" and "spending cap" in (views[second].error or "")
    assert len(WORLD.submitted) == 1
    assert sum(v.cost_usd or 0.0 for v in views.values()) == pytest.approx(10 * batch_cost())


def capped_batch_noting_waits(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, str, Callable[[], float], list[float]]:
    """A batch job under a $0.40 owner's cap, and what it holds noted at each of the worker's
    waits for an outage: (settings, job id, what it holds now, what it held at each wait)."""
    WORLD.polls_before_end = 3
    capped = settings.model_copy(
        update={"models": settings.models.model_copy(update={"user_spending_cap_usd": 0.4})}
    )
    body = {"prompts": PROMPTS, "model": "gpt-batch", "params": {"max_tokens": 20}}
    job_id = submit(capped, **body, seed=1)
    held_while_waiting: list[float] = []

    def held() -> float:
        with job_service(capped) as service:
            return held_by(service.store, job_id)

    waiting = Patience._waiting

    def note_held(self: Patience, what: str, state: Any) -> None:  # on the worker's loop
        with ThreadPoolExecutor(1) as pool:
            held_while_waiting.append(pool.submit(held).result())
        waiting(self, what, state)

    monkeypatch.setattr(Patience, "_waiting", note_held)
    return capped, job_id, held, held_while_waiting


def test_a_batch_still_running_stays_held_while_its_worker_waits_out_an_outage(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away at a poll of the job's batch: the worker waits it out, then runs
    the job again from its manifest. Only a stop kept the batch's worst case held, so while the
    worker waited the batch (paid whatever the cap says) held nothing, and the owner's other
    work could spend the room it will be paid from."""
    capped, job_id, held, held_while_waiting = capped_batch_noting_waits(settings, monkeypatch)
    outage = {"next": False}

    def at_poll() -> None:
        outage["next"] = len(WORLD.submitted) == 1 and not held_while_waiting

    async def go() -> None:
        async with Platform(capped) as platform:
            runs = platform.job_runs
            beat = runs.heartbeat

            def heartbeat(job: str) -> str | None:
                if outage["next"]:
                    outage["next"] = False
                    raise ServiceUnavailable("the database cannot be reached")
                return beat(job)

            monkeypatch.setattr(runs, "heartbeat", heartbeat)
            worker = Worker(platform, WorkerOptions(once=True, wait_s=0.2), gpu_sampler=None)
            worker.patience = Patience(worker.stop, first_s=0.05, longest_s=0.1)
            worker.runner.provider_batches = ProviderBatches(
                runs,
                capped,
                polling=Polling(first_s=0.01, max_s=0.02),
                provider_factory=lambda b, f: batch_provider(b, f, bedrock_role_arn=ROLE),
            )
            WORLD.on_poll = at_poll
            await worker.run()

    try:
        asyncio.run(go())
    finally:
        WORLD.on_poll = None
    assert len(held_while_waiting) == 1
    assert 0.4 / 2 < held_while_waiting[0] <= 0.4, held_while_waiting  # before: 0.0
    view, records = finished(capped, job_id)
    assert view.state == "succeeded", view.error
    assert len(records) == 10 and len(WORLD.submitted) == 1
    assert held() == 0.0


def test_a_batch_stays_held_while_the_next_run_waits_out_an_outage_before_its_manifest(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away at a poll of the job's batch, and again as the next run reads
    the job's stored records, before its manifest: that run's start dropped the batch's worst
    case (held again only from the manifest), so while the worker waited the second outage
    out the batch, running on, held nothing."""
    capped, job_id, held, held_while_waiting = capped_batch_noting_waits(settings, monkeypatch)
    outage = {"poll": False, "records": False}

    def at_poll() -> None:
        outage["poll"] = len(WORLD.submitted) == 1 and not held_while_waiting

    async def go() -> None:
        async with Platform(capped) as platform:
            runs = platform.job_runs
            beat, stored = runs.heartbeat, runs.stored_indices

            def heartbeat(job: str) -> str | None:
                if outage["poll"]:
                    outage["poll"], outage["records"] = False, True
                    raise ServiceUnavailable("the database cannot be reached")
                return beat(job)

            def stored_indices(job: str) -> set[int]:
                if outage["records"] and held_while_waiting:  # the next run, after a wait
                    outage["records"] = False
                    raise ServiceUnavailable("the database cannot be reached")
                return stored(job)

            monkeypatch.setattr(runs, "heartbeat", heartbeat)
            monkeypatch.setattr(runs, "stored_indices", stored_indices)
            worker = Worker(platform, WorkerOptions(once=True, wait_s=0.2), gpu_sampler=None)
            worker.patience = Patience(worker.stop, first_s=0.05, longest_s=0.1)
            worker.runner.provider_batches = ProviderBatches(
                runs,
                capped,
                polling=Polling(first_s=0.01, max_s=0.02),
                provider_factory=lambda b, f: batch_provider(b, f, bedrock_role_arn=ROLE),
            )
            WORLD.on_poll = at_poll
            await worker.run()

    try:
        asyncio.run(go())
    finally:
        WORLD.on_poll = None
    assert len(held_while_waiting) == 2, held_while_waiting
    assert all(0.4 / 2 < h <= 0.4 for h in held_while_waiting), held_while_waiting  # before: 0
    view, records = finished(capped, job_id)
    assert view.state == "succeeded", view.error
    assert len(records) == 10 and len(WORLD.submitted) == 1
    assert held() == 0.0


def test_a_job_cancelled_while_handed_back_cancels_its_running_batch(settings: Settings) -> None:
    """A worker stopped (a deploy) while its job's batch ran, and the owner cancelled the job
    before a worker took it again: the next delivery saw the cancel and ended the job, but no
    worker polled the batch any more, so none cancelled it: it ran on and was paid (and its
    worst case, held for it, stopped counting). It is cancelled now, and nothing is held."""
    WORLD.polls_before_end = 1000
    capped = settings.model_copy(
        update={"models": settings.models.model_copy(update={"user_spending_cap_usd": 0.4})}
    )
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)
    with job_service(capped) as service:
        assert held_by(service.store, job_id) > 0  # handed back with its batch running
        service.cancel(LOCAL_OWNER, job_id)
    run_worker(capped)
    view, _ = finished(capped, job_id)
    assert view.state == "cancelled"
    assert WORLD.cancelled == ["batch_abc123"]  # before: []
    with job_service(capped) as service:
        assert held_by(service.store, job_id) == 0.0


def _capped(settings: Settings, **queue: Any) -> Settings:
    """``settings`` under a $0.40 owner's cap, with ``queue`` settings."""
    return settings.model_copy(
        update={
            "models": settings.models.model_copy(update={"user_spending_cap_usd": 0.4}),
            "queue": settings.queue.model_copy(update=queue),
        }
    )


def _no_worker_holds(service: Any, job_id: str) -> None:
    """The job's worker is long gone (its heartbeat is old): a delete is not held up by it."""
    with service.store.sessions.begin() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        row.heartbeat_at = datetime.now(UTC) - timedelta(hours=1)


def test_a_job_that_fails_for_good_cancels_its_running_batch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's last attempt fails (here a bug at a heartbeat) while its provider batch runs:
    the job failed, but no worker polled its batch any more, so nobody cancelled it: it ran on
    and was paid for nobody, its worst case held against the owner's cap for its whole window.
    The job's end now cancels it, and lets its worst case go."""
    WORLD.polls_before_end = 1000
    capped = _capped(settings, max_receives=1)
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    broken = {"next": False}

    async def go() -> None:
        async with Platform(capped) as platform:
            runs = platform.job_runs
            beat = runs.heartbeat

            def heartbeat(job: str) -> str | None:
                if broken["next"]:
                    broken["next"] = False
                    raise RuntimeError("a bug")
                return beat(job)

            monkeypatch.setattr(runs, "heartbeat", heartbeat)
            worker = Worker(platform, WorkerOptions(once=True, wait_s=0.2), gpu_sampler=None)
            worker.runner.provider_batches = ProviderBatches(
                runs,
                capped,
                polling=Polling(first_s=0.01, max_s=0.02),
                provider_factory=lambda b, f: batch_provider(b, f, bedrock_role_arn=ROLE),
            )
            WORLD.on_poll = lambda: broken.update(next=WORLD.polls == 2)
            await worker.run()

    try:
        asyncio.run(go())
    finally:
        WORLD.on_poll = None
    view, _ = finished(capped, job_id)
    assert view.state == "failed" and "failed after 1 attempts" in (view.error or ""), view
    assert WORLD.cancelled == ["batch_abc123"]  # before: []
    with job_service(capped) as service:
        assert held_by(service.store, job_id) == 0.0


def test_a_dead_lettered_job_cancels_its_running_batch(settings: Settings) -> None:
    """A job whose worker died on every receive with its batch running (its message reached
    the dead-letter queue by redrive) is failed by the dead-letter sweep: its batch, polled by
    no worker, ran on and was paid for nobody. The sweep's worker now cancels it."""
    WORLD.polls_before_end = 1000
    capped = _capped(settings, max_receives=1)
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)  # the batch runs; the message is back in its queue
    with job_service(capped) as service:
        assert held_by(service.store, job_id) > 0
        row = service.store.get(job_id)
        assert row is not None
        queue = service.queues.by_name(row.queue)
        (message,) = queue.receive(1, 0.2)
        queue.dead_letter(message, "redriven: the worker died on every receive")
        with service.store.sessions.begin() as session:  # as the receives were counted
            stored = session.get(JobRow, job_id)
            assert stored is not None
            stored.attempts = 1
    run_worker(capped)
    view, _ = finished(capped, job_id)
    assert view.state == "failed" and "dead-lettered" in (view.error or ""), view.error
    assert WORLD.cancelled == ["batch_abc123"]  # before: []
    with job_service(capped) as service:
        assert held_by(service.store, job_id) == 0.0


def test_a_batch_left_cancelling_is_cancelled_again_and_let_go(settings: Settings) -> None:
    """A worker asked the provider to cancel the job's batch (its part ``cancelling``) and
    stopped before it saw the batch end or let its worst case go: the next delivery took the
    part for cancelled and did nothing, so the batch's worst case stayed held (and the job
    could not be deleted) for the batch's whole window, and a cancel that had not taken was
    never asked again. The part counts as running: it is cancelled again and let go."""
    WORLD.polls_before_end = 1000
    capped = _capped(settings)
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)
    key = f"generated/batch-jobs/{job_id}/provider/manifest.json"
    with job_service(capped) as service:
        manifest = json.loads(service.storage.get_bytes(key))
        for part in manifest["parts"]:
            part["status"] = "cancelling"  # asked, then the worker was gone
        service.storage.put_bytes(key, json.dumps(manifest).encode())
        service.cancel(LOCAL_OWNER, job_id)
        assert held_by(service.store, job_id) > 0
    run_worker(capped)
    assert WORLD.cancelled == ["batch_abc123"]  # before: []
    with job_service(capped) as service:
        assert held_by(service.store, job_id) == 0.0  # before: the worst case, for 24 hours


def test_a_job_whose_batch_may_still_run_is_not_deleted(settings: Settings) -> None:
    """A job cancelled while handed back with its batch running, deleted before a worker
    cancelled the batch: its row and holds went, so the running batch stopped counting against
    the owner's cap and nobody would ever cancel or collect it. The delete is refused (409)
    until the batch is cancelled, and a purge skips the job; then both delete it."""
    WORLD.polls_before_end = 1000
    capped = _capped(settings)
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)
    with job_service(capped) as service:
        service.cancel(LOCAL_OWNER, job_id)
        _no_worker_holds(service, job_id)
        with pytest.raises(Conflict, match="provider batch may still be running") as refused:
            service.delete(LOCAL_OWNER, job_id)
        assert refused.value.http_status == 409
        assert service.purge(timedelta(0)) == 0
        assert service.store.get(job_id) is not None and held_by(service.store, job_id) > 0
    run_worker(capped)  # the next delivery cancels the batch
    assert WORLD.cancelled == ["batch_abc123"]
    with job_service(capped) as service:
        _no_worker_holds(service, job_id)
        service.delete(LOCAL_OWNER, job_id)
        assert service.store.get(job_id) is None


@pytest.mark.parametrize("ended", ["failed", "cancelled"])
def test_a_dead_lettered_job_failed_by_a_sweep_that_stopped_has_its_batch_cancelled(
    settings: Settings, ended: str
) -> None:
    """The dead-letter sweep failed the job, then its worker stopped (a deploy, a crash, an
    outage met while stopping) before it cancelled the batch. The message stays in the
    dead-letter queue, but the next sweep found the job ended and passed it by: its batch ran
    on, paid for nobody, and the job could not be deleted for the batch's window. The next
    sweep now cancels the batch of a failed job that still holds one; and of a job its owner
    cancelled while its message lay in the dead-letter queue (no worker will see it again)."""
    WORLD.polls_before_end = 1000
    capped = _capped(settings, max_receives=1)
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)
    with job_service(capped) as service:
        row = service.store.get(job_id)
        assert row is not None
        queue = service.queues.by_name(row.queue)
        (message,) = queue.receive(1, 0.2)
        queue.dead_letter(message, "redriven: the worker died on every receive")
        # What the sweep (or the owner's cancel) did: the job ended, its batch kept.
        assert service.store.finish(job_id, ended, error="dead-lettered after 1 receives")
        assert held_by(service.store, job_id) > 0
    run_worker(capped)
    assert WORLD.cancelled == ["batch_abc123"]  # before: []
    with job_service(capped) as service:
        assert held_by(service.store, job_id) == 0.0
        _no_worker_holds(service, job_id)
        service.delete(LOCAL_OWNER, job_id)  # before: 409 for the batch's window
    run_worker(capped)  # a later sweep asks nothing more of the provider
    assert WORLD.cancelled == ["batch_abc123"]


@pytest.mark.parametrize("state", ["running", "failed"])
def test_a_dead_lettered_job_this_release_cannot_read_stops_no_worker(
    settings: Settings, state: str
) -> None:
    """A dead-lettered provider batch job whose stored spec this release cannot read (a field
    of another release's, mid rolling deploy), still running or failed by a sweep that stopped
    before it cancelled the batch: reading the spec raised out of the sweep and the worker's
    loop, so every worker that swept stopped with a traceback, again at each start, and the
    dead-lettered jobs behind it were never settled. The message is passed by (its batch stays
    held: it cannot be cancelled), and the sweep goes on to the next one."""
    WORLD.polls_before_end = 1000
    capped = _capped(settings, max_receives=1)
    unreadable = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)
    other = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    with job_service(capped) as service:
        row = service.store.get(unreadable)
        assert row is not None
        queue = service.queues.by_name(row.queue)
        messages = queue.receive(2, 0.2)
        assert len(messages) == 2
        for message in messages:
            queue.dead_letter(message, "redriven: the worker died on every receive")
        if state == "failed":
            assert service.store.finish(unreadable, "failed", error="dead-lettered")
        with service.store.sessions.begin() as session:
            for job_id in (unreadable, other):
                stored = session.get(JobRow, job_id)
                assert stored is not None
                stored.attempts = 1
            stored = session.get(JobRow, unreadable)
            assert stored is not None
            stored.spec = {**stored.spec, "from_another_release": True}
    run_worker(capped)  # before: pydantic's ValidationError out of Worker.run
    view, _ = finished(capped, other)
    assert view.state == "failed" and "dead-lettered" in (view.error or ""), view.error
    assert WORLD.cancelled == []
    with job_service(capped) as service:
        assert held_by(service.store, unreadable) > 0


def owner_spend(service: Any) -> float:
    return SpendingStore(service.store.sessions.kw["bind"]).spend(LOCAL_OWNER.id).spent_usd


BATCH_MODELS = ["gpt-batch", "claude-batch", "claude-bedrock-batch"]


def batch_job(model: str) -> dict[str, Any]:
    """A job of ``model`` big enough for its provider batch (Bedrock's least is 100 records)."""
    if model == "claude-bedrock-batch":
        return {"template": "product-review", "count": 100, "model": model}
    return {"prompts": PROMPTS, "model": model}


@pytest.mark.parametrize("model", BATCH_MODELS)
def test_a_batch_cancelled_while_polled_counts_the_answers_it_was_paid_for(
    settings: Settings, model: str
) -> None:
    """The owner cancels the job while its worker polls the batch, which had answered three
    records: the provider bills those (OpenAI's ``cancelled`` batch keeps them in its output
    file, Anthropic's ended batch has them ``succeeded``, Bedrock's ``Stopped`` job wrote
    them), but the batch's hold was let go at the cancel and nothing counted them: the job
    cost $0 and the owner's spend, and so their cap, missed real money. The batch stays held
    until it is seen to end, and then what it answered is the job's cost."""
    WORLD.polls_before_end = 1000
    WORLD.answered_before_cancel = {0, 3, 7}
    with job_service(settings) as service:  # opened outside the worker's event loop
        before = owner_spend(service)
        job_id = submit(settings, **batch_job(model))

        def cancel_at_second_poll() -> None:
            if WORLD.polls == 2:
                service.cancel(LOCAL_OWNER, job_id)

        WORLD.on_poll = cancel_at_second_poll
        run_worker(settings)
        WORLD.on_poll = None
        view, _ = finished(settings, job_id)
        assert view.state == "cancelled"
        assert len(WORLD.cancelled) == 1 and WORLD.online == []
        assert view.cost_usd == pytest.approx(3 * batch_cost())  # before: 0
        assert held_by(service.store, job_id) == 0.0
        assert owner_spend(service) - before == pytest.approx(3 * batch_cost())


def test_a_batch_cancelled_after_its_job_ended_counts_what_it_answered(
    settings: Settings,
) -> None:
    """A job cancelled while handed back has its batch cancelled by the next delivery: the
    batch's worst case was let go and the two answers it had made, billed, were never counted
    in the job's cost. They are, once the batch is seen to end, and nothing stays held."""
    WORLD.polls_before_end = 1000
    WORLD.answered_before_cancel = {2, 5}
    capped = _capped(settings)
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)
    with job_service(capped) as service:
        service.cancel(LOCAL_OWNER, job_id)
    run_worker(capped)
    view, _ = finished(capped, job_id)
    assert view.state == "cancelled" and WORLD.cancelled == ["batch_abc123"]
    assert view.cost_usd == pytest.approx(2 * batch_cost())  # before: 0
    with job_service(capped) as service:
        assert held_by(service.store, job_id) == 0.0


@pytest.mark.parametrize("model", BATCH_MODELS)
def test_a_cancel_the_provider_failed_is_asked_again(settings: Settings, model: str) -> None:
    """The job was cancelled while handed back, and the provider answered the next delivery's
    cancel with a 500: the warning was logged and the message deleted, so nobody asked again;
    the batch ran its whole window, paid for nobody, and stayed held against the owner's cap.
    The message now comes back while the batch may run, and its next delivery cancels it."""
    WORLD.polls_before_end = 1000
    WORLD.answered_before_cancel = {1}
    settings = settings.model_copy(  # a cap the batch's worst case is held in
        update={"models": settings.models.model_copy(update={"user_spending_cap_usd": 100.0})}
    )
    job_id = submit(settings, **batch_job(model))
    run_until_first_poll(settings)
    with job_service(settings) as service:
        service.cancel(LOCAL_OWNER, job_id)
        assert held_by(service.store, job_id) > 0
    WORLD.failing_cancels = 1
    run_worker(settings)
    assert WORLD.cancel_calls == 2 and len(WORLD.cancelled) == 1  # before: 1 and 0
    view, _ = finished(settings, job_id)
    assert view.cost_usd == pytest.approx(batch_cost())
    with job_service(settings) as service:
        assert held_by(service.store, job_id) == 0.0


def test_a_batch_that_cannot_be_cancelled_stops_no_worker_and_is_swept_again(
    settings: Settings,
) -> None:
    """A provider that refuses every cancel (an outage of hours) does not keep a worker, nor
    loop: the message comes back ``max_receives`` times, then lies in the dead-letter queue
    with the batch still held; the sweep asks again later, and once the provider takes the
    cancel the batch's answers are counted and nothing stays held."""
    WORLD.polls_before_end = 1000
    capped = _capped(settings)
    job_id = submit(capped, prompts=PROMPTS, model="gpt-batch", params={"max_tokens": 20})
    run_until_first_poll(capped)
    with job_service(capped) as service:
        service.cancel(LOCAL_OWNER, job_id)
    WORLD.failing_cancels = 1_000_000
    run_worker(capped)  # returns: the message went to the dead-letter queue
    assert WORLD.cancelled == [] and WORLD.cancel_calls == capped.queue.max_receives
    with job_service(capped) as service:
        assert held_by(service.store, job_id) > 0  # it may still run: held
    WORLD.failing_cancels = 0
    WORLD.answered_before_cancel = {4}
    run_worker(capped)  # its sweep asks again
    assert WORLD.cancelled == ["batch_abc123"]
    view, _ = finished(capped, job_id)
    assert view.cost_usd == pytest.approx(batch_cost())
    with job_service(capped) as service:
        assert held_by(service.store, job_id) == 0.0
