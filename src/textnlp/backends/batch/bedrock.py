"""Bedrock batch inference (``CreateModelInvocationJob``): each part's records as a JSONL file
in the platform's bucket under ``generated/batch-jobs/<job>/provider/input/``, the answers
written by Bedrock under ``.../provider/output/part-<n>/<bedrock job id>/<file>.out``; the
job polled with ``GetModelInvocationJob`` and stopped with ``StopModelInvocationJob``.

Bedrock runs the job as the service role ``models.bedrock_batch_role_arn`` (defined in
``infra/``: it reads the input and writes the output prefix of batch jobs, and invokes the
model). The job name (``textnlp-<job>-part-<n>``) and ``clientRequestToken`` are the job and
part, so a worker that died after creating a part and creates it again gets the same Bedrock
job back, not a second one: Bedrock answers a repeated token with the first job, and a name
it holds already with a ``ConflictException``, after which the job of that name is looked up
(``ListModelInvocationJobs`` by name; ``find`` does the same for a part whose submit died).

Bodies are the model's InvokeModel body (``providers.bedrock_models``): batch inference takes
no Converse body. A Bedrock batch has a state-change event on EventBridge too; the worker polls,
which needs no more infrastructure and is as prompt at these job lengths (hours).

Limits (Bedrock quotas "Batch inference", defaults that accounts can raise): at least 100 and
at most 50,000 records per job, 1 GB per input file. Parts below the minimum are not sent: their
records are generated online.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from textnlp.backends.aws_common import make_client
from textnlp.backends.batch import bedrock_lines
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
from textnlp.backends.bedrock import BedrockBackend
from textnlp.backends.providers.bedrock_models import InvokeCodec, bedrock_profile
from textnlp.domain import GenerationRequest
from textnlp.errors import BackendError, ConfigError, InvalidRequest

MIN_RECORDS = 100
MAX_RECORDS = 50_000
MAX_FILE_BYTES = 1024 * 1024 * 1024
ENDED = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
OUTPUT_SUFFIX = ".out"
MANIFEST = "manifest.json.out"
#: Jobs per page of ``ListModelInvocationJobs`` (at most 1000).
LIST_PAGE = 100


class BedrockBatch(BatchProvider):
    name = "bedrock"
    limits = BatchLimits(MAX_RECORDS, MAX_FILE_BYTES, MIN_RECORDS)

    def __init__(
        self, backend: BedrockBackend, files: BatchFiles, role_arn: str, client: Any = None
    ) -> None:
        super().__init__(backend.spec, backend.context.prices)
        self.backend = backend
        self.files = files
        if not role_arn:
            raise ConfigError(
                "Bedrock batch inference needs the service role "
                "TEXTNLP_MODELS__BEDROCK_BATCH_ROLE_ARN (infra/ defines it)"
            )
        if files.s3_uri(files.key("input/")) is None:
            raise ConfigError("Bedrock batch inference reads and writes S3: set storage.backend s3")
        self.role_arn = role_arn
        profile = bedrock_profile(backend.model_id, backend.options)
        if profile.codec is None:
            raise ConfigError(
                f"no InvokeModel body for provider {profile.provider!r} of {backend.model_id}: "
                "Bedrock batch inference takes InvokeModel bodies only"
            )
        self.codec: InvokeCodec = profile.codec
        #: The ``bedrock`` control-plane client (tests pass a stubbed one).
        self.client = client or make_client("bedrock", backend.options, backend.context)
        self.aws = AwsControl(self.client, backend=backend.name, model=self.spec.id)

    def encode(self, index: int, request: GenerationRequest) -> bytes:
        body = self.codec.body(self.backend.model_id, request)
        body.update(self.backend.options.additional_fields or {})
        return json.dumps(bedrock_lines.input_line(index, body)).encode()

    async def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        return await self.aws.call(operation, **arguments)

    async def submit(self, job_id: str, part: int, lines: Sequence[BatchLine]) -> str:
        data = b"".join(line.line + b"\n" for line in lines)
        files = self.files
        input_key = files.put(f"input/part-{part}.jsonl", data)
        try:
            answer = await self._call(
                "create_model_invocation_job",
                jobName=job_name(job_id, part),
                roleArn=self.role_arn,
                clientRequestToken=f"{job_id}-{part}",
                modelId=self.backend.model_id,
                inputDataConfig={
                    "s3InputDataConfig": {
                        "s3Uri": files.s3_uri(input_key),
                        "s3InputFormat": "JSONL",
                    }
                },
                outputDataConfig={
                    "s3OutputDataConfig": {"s3Uri": files.s3_uri(files.key(f"output/part-{part}/"))}
                },
            )
        except BackendError as exc:
            if error_code(exc) != "ConflictException":
                raise
            existing = await self.find(job_id, part, lines, 0.0)
            if existing is None:
                raise
            return existing
        return str(answer["jobArn"])

    async def find(
        self, job_id: str, part: int, lines: Sequence[BatchLine], since: float
    ) -> str | None:
        name = job_name(job_id, part)
        arguments: dict[str, Any] = {"nameContains": name, "maxResults": LIST_PAGE}
        while True:
            page = await self._call("list_model_invocation_jobs", **arguments)
            for job in page.get("invocationJobSummaries") or []:
                if job.get("jobName") == name:
                    return str(job["jobArn"])
            if not page.get("nextToken"):
                return None
            arguments["nextToken"] = page["nextToken"]

    async def poll(self, batch_id: str) -> BatchState:
        job = await self._call("get_model_invocation_job", jobIdentifier=batch_id)
        status = str(job.get("status", ""))
        counts = {
            name: int(job[field])
            for name, field in (
                ("total", "totalRecordCount"),
                ("processed", "processedRecordCount"),
                ("succeeded", "successRecordCount"),
                ("errored", "errorRecordCount"),
            )
            if job.get(field) is not None
        }
        return BatchState(
            status=status,
            ended=status in ENDED,
            failed=status == "Failed",
            counts=counts,
            error=str(job["message"]) if job.get("message") else None,
        )

    async def results(
        self, batch_id: str, requests: dict[int, GenerationRequest], *, job_id: str, part: int
    ) -> BatchResults:
        job = await self._call("get_model_invocation_job", jobIdentifier=batch_id)
        uri = str(job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        prefix = self.files.key(uri.split("/provider/", 1)[1]) if "/provider/" in uri else ""
        if not prefix:
            raise ConfigError(f"Bedrock job {batch_id} writes outside this job's files: {uri}")
        found: BatchResults = {}
        for key in sorted(self.files.list(prefix)):
            if not key.endswith(OUTPUT_SUFFIX) or key.endswith(MANIFEST):
                continue
            text = self.files.get(key).decode()
            for index, answer in bedrock_lines.parse_file(text, self.codec.parse):
                if index is None or index not in requests or index in found:
                    continue
                found[index] = self.answer(answer, requests[index])
        return found

    async def cancel(self, batch_id: str) -> None:
        try:
            await self._call("stop_model_invocation_job", jobIdentifier=batch_id)
        except InvalidRequest as exc:
            # A job that has ended cannot be stopped (ValidationException): nothing to do.
            if "ValidationException" not in exc.message:
                raise

    async def aclose(self) -> None:
        self.client.close()
