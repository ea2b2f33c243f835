"""SageMaker batch transform for provider batch jobs, over botocore faked at the transport
(bodies from the SageMaker API reference): the transform job made of the endpoint's model and
instance type with the online backend's bodies, its lookup by name, states, stop, and the
output lines mapped back to their records by id, exactly once."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.unit.backends_cloud.fakes import AwsFake, Canned, aws_error, json_response
from tests.unit.backends_cloud.memory_files import BUCKET, JOB, MemoryFiles
from textnlp.backends.batch import batch_provider, unsupported
from textnlp.backends.batch.base import BatchError, BatchLine
from textnlp.backends.batch.sagemaker import SageMakerBatch
from textnlp.backends.cloud import CloudContext
from textnlp.backends.llamacpp import LlamaCppBackend
from textnlp.backends.sagemaker import SageMakerBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fake_aws_credentials")

PARAMS = GenerationParams(max_tokens=32, temperature=0.7, top_p=0.9)


def lines(count: int = 3) -> list[BatchLine]:
    return [
        BatchLine(i, GenerationRequest(prompt=f"Tell me about {i}", params=PARAMS), b"{}")
        for i in range(count)
    ]


# -- SageMaker ----------------------------------------------------------------------------------
ENDPOINT = "textnlp-multi-model"
CREATED = 1711471533.0


def describe_endpoint() -> dict[str, Any]:
    """SageMaker API reference, ``DescribeEndpoint``."""
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": "textnlp-multi-model-config",
        "ProductionVariants": [{"VariantName": "llama-7b", "CurrentWeight": 0.5}],
        "EndpointStatus": "InService",
        "CreationTime": CREATED,
        "LastModifiedTime": CREATED,
    }


def describe_endpoint_config(**llama: Any) -> dict[str, Any]:
    """SageMaker API reference, ``DescribeEndpointConfig``."""
    return {
        "EndpointConfigName": "textnlp-multi-model-config",
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x",
        "ProductionVariants": [
            {
                "VariantName": "gpt-j-6b",
                "ModelName": "textnlp-gpt-j-6b",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g5.2xlarge",
                "InitialVariantWeight": 0.5,
            },
            {
                "VariantName": "llama-7b",
                "ModelName": "textnlp-llama-7b",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g5.12xlarge",
                "InitialVariantWeight": 0.5,
                **llama,
            },
        ],
        "CreationTime": CREATED,
    }


def describe_transform_job(name: str, status: str, **extra: Any) -> dict[str, Any]:
    """SageMaker API reference, ``DescribeTransformJob``."""
    provider = f"s3://{BUCKET}/generated/batch-jobs/{JOB}/provider/"
    return {
        "TransformJobName": name,
        "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}",
        "TransformJobStatus": status,
        "ModelName": "textnlp-llama-7b",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{provider}input/part-0.jsonl"}
            },
            "ContentType": "application/json",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"{provider}output/part-0", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1},
        "CreationTime": CREATED,
        **extra,
    }


def sagemaker_error(code: str, message: str) -> Canned:
    """An error of SageMaker's JSON protocol: the code in the body's ``__type``."""
    return aws_error(code, message, 400, **{"__type": code})


def sagemaker_spec(**options: Any) -> ModelSpec:
    return ModelSpec(
        id="llama-7b",
        backend="sagemaker",
        endpoint=ENDPOINT,
        context_length=2048,
        chat=False,
        options={"target_variant": "llama-7b", **options},
    )


async def sagemaker_provider(
    context: CloudContext, spec: ModelSpec | None = None
) -> tuple[SageMakerBatch, AwsFake, MemoryFiles]:
    backend = SageMakerBackend(spec or sagemaker_spec(), context=context)
    await backend.load()
    client = boto3.client("sagemaker", region_name="us-east-1")
    files = MemoryFiles()
    return SageMakerBatch(backend, files, client), AwsFake(client), files


def encoded(provider: SageMakerBatch, count: int = 3) -> list[BatchLine]:
    return [
        BatchLine(x.index, x.request, provider.encode(x.index, x.request)) for x in lines(count)
    ]


async def test_sagemaker_submit_creates_a_transform_job_of_the_endpoints_model(
    context: CloudContext,
) -> None:
    provider, fake, files = await sagemaker_provider(context)
    name = f"textnlp-{JOB}-part-0"
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}"
    fake.queue(
        json_response(describe_endpoint()),
        json_response(describe_endpoint_config()),
        json_response({"TransformJobArn": arn}),
    )
    assert await provider.submit(JOB, 0, encoded(provider)) == name
    uploaded = files.objects[files.key("input/part-0.jsonl")].decode().splitlines()
    first = json.loads(uploaded[0])
    # The online backend's TGI body under the record's id.
    assert first["id"] == "record-0"
    assert first["body"]["inputs"] == "Tell me about 0"
    assert first["body"]["parameters"]["max_new_tokens"] == 32
    assert fake.requests[0].headers["X-Amz-Target"] == "SageMaker.DescribeEndpoint"
    created = fake.requests[2].json()
    assert fake.requests[2].headers["X-Amz-Target"] == "SageMaker.CreateTransformJob"
    assert created["TransformJobName"] == name
    assert created["ModelName"] == "textnlp-llama-7b"  # the variant's model
    assert created["TransformResources"] == {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1}
    assert created["BatchStrategy"] == "SingleRecord"
    source = created["TransformInput"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == f"s3://{BUCKET}/{files.key('input/part-0.jsonl')}"
    assert created["TransformInput"]["SplitType"] == "Line"
    assert (
        created["TransformOutput"]["S3OutputPath"] == f"s3://{BUCKET}/{files.key('output/part-0')}"
    )
    assert created["DataProcessing"] == {
        "InputFilter": "$.body",
        "JoinSource": "Input",
        "OutputFilter": "$['id','SageMakerOutput']",
    }
    assert {"Key": "textnlp:job", "Value": JOB} in created["Tags"]


async def test_sagemaker_create_of_a_name_in_use_finds_that_job(context: CloudContext) -> None:
    provider, fake, _ = await sagemaker_provider(context)
    name = f"textnlp-{JOB}-part-0"
    fake.queue(
        json_response(describe_endpoint()),
        json_response(describe_endpoint_config()),
        sagemaker_error("ResourceInUse", f"Job name {name} is already in use"),
        json_response(describe_transform_job(name, "InProgress")),
    )
    assert await provider.submit(JOB, 0, encoded(provider)) == name


async def test_sagemaker_find_poll_and_cancel(context: CloudContext) -> None:
    provider, fake, _ = await sagemaker_provider(context)
    name = f"textnlp-{JOB}-part-0"
    fake.queue(
        sagemaker_error("ValidationException", f"Could not find transform job '{name}'."),
        json_response(describe_transform_job(name, "InProgress")),
        json_response(describe_transform_job(name, "InProgress")),
        json_response(
            describe_transform_job(
                name, "Failed", FailureReason="ClientError: See job logs for more information"
            )
        ),
        sagemaker_error("ValidationException", "The transform job has already completed."),
    )
    assert await provider.find(JOB, 0, lines(), time.time()) is None
    assert await provider.find(JOB, 0, lines(), time.time()) == name
    state = await provider.poll(name)
    assert (state.status, state.ended, state.failed) == ("InProgress", False, False)
    state = await provider.poll(name)
    assert state.ended and state.failed and state.error is not None and "ClientError" in state.error
    await provider.cancel(name)  # it had ended: nothing to stop, no error
    assert fake.requests[-1].headers["X-Amz-Target"] == "SageMaker.StopTransformJob"


async def test_sagemaker_results_map_lines_back_by_id_exactly_once(context: CloudContext) -> None:
    provider, fake, files = await sagemaker_provider(context)
    name = f"textnlp-{JOB}-part-0"

    def tgi(text: str) -> list[dict[str, Any]]:
        return [
            {
                "generated_text": text,
                "details": {"finish_reason": "eos_token", "generated_tokens": 4},
            }
        ]

    out = [
        {"id": "record-2", "SageMakerOutput": tgi(" two")},  # in any order
        {"id": "record-0", "SageMakerOutput": tgi(" zero")},
        {"id": "record-0", "SageMakerOutput": tgi(" zero again")},  # once only
        {"id": "record-9", "SageMakerOutput": tgi(" not asked for")},
        {"id": "record-1", "SageMakerOutput": {"error": "not a TGI answer"}},
        {"SageMakerOutput": tgi(" no id")},
    ]
    text = "".join(json.dumps(x) + "\n" for x in out) + "not json\n"
    files.put("output/part-0/part-0.jsonl.out", text.encode())
    files.put("output/part-1/part-1.jsonl.out", b'{"id": "record-1", "SageMakerOutput": []}\n')
    fake.queue(json_response(describe_transform_job(name, "Completed")))
    requests = {x.index: x.request for x in lines()}
    found = await provider.results(name, requests, job_id=JOB, part=0)
    assert sorted(found) == [0, 1, 2]
    zero, one, two = found[0], found[1], found[2]
    assert not isinstance(zero, BatchError) and zero.text == " zero"
    assert not isinstance(two, BatchError) and two.usage.completion_tokens == 4
    assert isinstance(one, BatchError)  # retried online


async def test_sagemaker_models_a_transform_job_cannot_run(context: CloudContext) -> None:
    with pytest.raises(ConfigError, match="multi-model"):
        await sagemaker_provider(context, sagemaker_spec(target_model="reviews.tar.gz"))
    provider, fake, _ = await sagemaker_provider(context)
    serverless = {
        "InstanceType": None,
        "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5},
    }
    config = describe_endpoint_config()
    config["ProductionVariants"][1] = {
        "VariantName": "llama-7b",
        "ModelName": "textnlp-llama-7b",
        **{k: v for k, v in serverless.items() if v is not None},
    }
    fake.queue(json_response(describe_endpoint()), json_response(config))
    with pytest.raises(ConfigError, match="serverless"):
        await provider.submit(JOB, 0, encoded(provider))
    other, fake, _ = await sagemaker_provider(context, sagemaker_spec(target_variant="mistral"))
    fake.queue(json_response(describe_endpoint()), json_response(describe_endpoint_config()))
    with pytest.raises(ConfigError, match="no variant 'mistral'"):
        await other.submit(JOB, 0, encoded(other))


async def test_sagemaker_has_a_provider_batch_and_the_embedded_model_none(
    context: CloudContext,
) -> None:
    assert unsupported(SageMakerBackend) is None
    reason = unsupported(LlamaCppBackend)
    assert reason is not None and "SageMaker" in reason
    backend = SageMakerBackend(sagemaker_spec(), context=context)
    await backend.load()
    client = boto3.client("sagemaker", region_name="us-east-1")
    provider = batch_provider(backend, MemoryFiles(), sagemaker_client=client)
    assert isinstance(provider, SageMakerBatch) and provider.client is client
