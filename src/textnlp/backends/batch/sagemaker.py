"""SageMaker batch transform (``CreateTransformJob``) for models hosted on SageMaker endpoints:
each part's records as a JSONL file in the platform's bucket under
``generated/batch-jobs/<job>/provider/input/part-<n>.jsonl``, transformed by the endpoint's own
SageMaker model on an instance of its variant's type, the answers written by SageMaker to
``.../provider/output/part-<n>/part-<n>.jsonl.out``; the job polled with
``DescribeTransformJob`` and stopped with ``StopTransformJob``.

One translation: each line's body is the body the online backend sends
(``SageMakerBackend.request_body``: TGI ``inputs`` or OpenAI messages) and each answer is read
as it reads one (``parse_body``). Lines carry their record's id, which SageMaker joins to the
answer (``sagemaker_lines``), so the answers map back to their records exactly once.

The model and instance type come from the endpoint (``DescribeEndpoint``,
``DescribeEndpointConfig``; the variant of ``options.target_variant``, else the first; the
model of ``options.inference_component`` where one is named). SageMaker runs the transform
as the model's execution role (``infra/``: it reads the input and writes the output prefix of
batch jobs). A multi-model endpoint's archive (``target_model``) cannot be transformed: a
transform job runs one model, not a multi-model container; nor can a serverless variant's
model (it has no instance type).

The job name (``textnlp-<job>-part-<n>``) is the job and part, unique in the account: a worker
that died after creating a part finds it by that name (``find``), and a second create of it
fails and finds it too. A transform job fails as a whole when a record fails; the job's
attempt then fails with SageMaker's reason, as for the other providers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from textnlp.backends.aws_common import make_client
from textnlp.backends.batch import sagemaker_lines
from textnlp.backends.batch.aws import AwsControl, error_code
from textnlp.backends.batch.base import (
    BatchFiles,
    BatchLimits,
    BatchLine,
    BatchProvider,
    BatchResults,
    BatchState,
    job_name,
)
from textnlp.backends.sagemaker import SageMakerBackend
from textnlp.domain import GenerationRequest
from textnlp.errors import BackendError, ConfigError

#: A part's records and bytes: one input file that one instance works through.
MAX_RECORDS = 50_000
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Statuses after which a transform job changes no more.
ENDED = frozenset({"Completed", "Failed", "Stopped"})
OUTPUT_SUFFIX = ".out"
#: Codes of a transform job that does not exist (SageMaker answers ``ValidationException``).
NOT_FOUND = frozenset({"ValidationException", "ValidationError", "ResourceNotFound"})
#: The content type of each record sent to the container, and of its answer.
CONTENT_TYPE = "application/json"


class SageMakerBatch(BatchProvider):
    name = "sagemaker"
    limits = BatchLimits(MAX_RECORDS, MAX_FILE_BYTES)

    def __init__(self, backend: SageMakerBackend, files: BatchFiles, client: Any = None) -> None:
        super().__init__(backend.spec, backend.context.prices)
        options = backend.options
        if options.target_model:
            raise ConfigError(
                f"model {backend.spec.id} runs on a multi-model endpoint (target_model): "
                "SageMaker batch transform runs a single model; generate it online"
            )
        if not backend.spec.endpoint:
            raise ConfigError(f"model {backend.spec.id}: a sagemaker entry needs 'endpoint:'")
        if files.s3_uri(files.key("input/")) is None:
            raise ConfigError(
                "SageMaker batch transform reads and writes S3: set storage.backend s3"
            )
        self.backend = backend
        self.files = files
        #: The ``sagemaker`` control-plane client (tests pass one of their own).
        self.client = client or make_client("sagemaker", options, backend.context)
        self.aws = AwsControl(self.client, backend=backend.name, model=self.spec.id)

    def encode(self, index: int, request: GenerationRequest) -> bytes:
        body = self.backend.request_body(request)
        return json.dumps(sagemaker_lines.input_line(index, body)).encode()

    async def model(self) -> tuple[str, str]:
        """The SageMaker model behind the endpoint and the instance type it is served on."""
        call, options = self.aws.call, self.backend.options
        endpoint = await call("describe_endpoint", EndpointName=self.backend.spec.endpoint)
        config = await call(
            "describe_endpoint_config", EndpointConfigName=endpoint["EndpointConfigName"]
        )
        variants: list[dict[str, Any]] = config.get("ProductionVariants") or []
        model_name: str | None = None
        variant_name = options.target_variant
        if options.inference_component:
            component = await call(
                "describe_inference_component", InferenceComponentName=options.inference_component
            )
            model_name = (component.get("Specification") or {}).get("ModelName")
            variant_name = component.get("VariantName") or variant_name
        chosen = next((v for v in variants if v.get("VariantName") == variant_name), None)
        if chosen is None and variant_name is None and variants:
            chosen = variants[0]
        if chosen is None:
            raise ConfigError(
                f"endpoint {self.backend.spec.endpoint} has no variant {variant_name!r}"
            )
        model_name = model_name or chosen.get("ModelName")
        instance_type = chosen.get("InstanceType")
        if not model_name or not instance_type:
            raise ConfigError(
                f"variant {chosen.get('VariantName')} of endpoint {self.backend.spec.endpoint} "
                "names no model and instance type (a serverless variant): SageMaker batch "
                "transform needs both"
            )
        return str(model_name), str(instance_type)

    async def submit(self, job_id: str, part: int, lines: Sequence[BatchLine]) -> str:
        files = self.files
        name = job_name(job_id, part)
        data = b"".join(line.line + b"\n" for line in lines)
        input_key = files.put(f"input/part-{part}.jsonl", data)
        model_name, instance_type = await self.model()
        try:
            await self.aws.call(
                "create_transform_job",
                TransformJobName=name,
                ModelName=model_name,
                BatchStrategy="SingleRecord",
                TransformInput={
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": files.s3_uri(input_key)}
                    },
                    "ContentType": CONTENT_TYPE,
                    "SplitType": "Line",
                    "CompressionType": "None",
                },
                TransformOutput={
                    "S3OutputPath": files.s3_uri(files.key(f"output/part-{part}")),
                    "Accept": CONTENT_TYPE,
                    "AssembleWith": "Line",
                },
                TransformResources={"InstanceType": instance_type, "InstanceCount": 1},
                DataProcessing={
                    "InputFilter": sagemaker_lines.INPUT_FILTER,
                    "JoinSource": "Input",
                    "OutputFilter": sagemaker_lines.OUTPUT_FILTER,
                },
                Tags=[
                    {"Key": "textnlp:job", "Value": job_id},
                    {"Key": "textnlp:part", "Value": str(part)},
                ],
            )
        except BackendError:
            # A name SageMaker holds already (ResourceInUse): the part's job, made before.
            if await self.find(job_id, part, lines, 0.0) is None:
                raise
        return name

    async def find(
        self, job_id: str, part: int, lines: Sequence[BatchLine], since: float
    ) -> str | None:
        name = job_name(job_id, part)
        try:
            await self.aws.call("describe_transform_job", TransformJobName=name)
        except BackendError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise
        return name

    async def poll(self, batch_id: str) -> BatchState:
        job = await self.aws.call("describe_transform_job", TransformJobName=batch_id)
        status = str(job.get("TransformJobStatus", ""))
        return BatchState(
            status=status,
            ended=status in ENDED,
            failed=status == "Failed",
            error=str(job["FailureReason"]) if job.get("FailureReason") else None,
        )

    async def results(
        self, batch_id: str, requests: dict[int, GenerationRequest], *, job_id: str, part: int
    ) -> BatchResults:
        job = await self.aws.call("describe_transform_job", TransformJobName=batch_id)
        uri = str(job["TransformOutput"]["S3OutputPath"])
        if "/provider/" not in uri:
            raise ConfigError(f"transform job {batch_id} writes outside this job's files: {uri}")
        prefix = self.files.key(uri.split("/provider/", 1)[1].rstrip("/") + "/")
        found: BatchResults = {}
        for key in sorted(self.files.list(prefix)):
            if not key.endswith(OUTPUT_SUFFIX):
                continue
            text = self.files.get(key).decode()
            for index, answer in sagemaker_lines.parse_file(text, self.backend.parse_body):
                if index is None or index not in requests or index in found:
                    continue
                found[index] = self.answer(answer, requests[index])
        return found

    async def cancel(self, batch_id: str) -> None:
        try:
            await self.aws.call("stop_transform_job", TransformJobName=batch_id)
        except BackendError as exc:
            # A job that has ended cannot be stopped (ValidationException): nothing to do.
            if error_code(exc) not in NOT_FOUND:
                raise

    async def aclose(self) -> None:
        self.aws.close()
