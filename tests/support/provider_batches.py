"""Provider batch APIs faked at the transport, for jobs with ``provider_batch``.

``WORLD`` plays OpenAI (files + batches + chat completions, through ``httpx2.MockTransport``
under the real ``openai`` SDK), Anthropic (Message Batches + messages, under the ``anthropic``
SDK) and Bedrock (``CreateModelInvocationJob``/``GetModelInvocationJob``/``Stop...`` on a boto3
``bedrock`` client hooked at botocore's ``before-send``, reading the input from and writing the
``.out`` file to the real bucket in moto's S3, and ``InvokeModel`` on ``bedrock-runtime``).
Bodies follow the providers' API references. A test sets the scenario on ``WORLD``: which
records error, which an expired batch never ran, which answers break the template's schema,
and what happens at each poll. ``drop_create`` plays the window a worker can die in: the
provider makes the batch, but its answer never reaches the worker (the connection drops), so
the worker knows no batch id; the batch is listed afterwards (OpenAI and Anthropic list batches,
Bedrock lists invocation jobs by name). SageMaker's control plane is moto's own (its transform
job records); ``sagemaker_control`` writes the transform's ``.out`` file when the job is
created, and ``sagemaker_runtime`` answers the online ``InvokeEndpoint`` calls.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

from textnlp.backends.anthropic_api import AnthropicBackend
from textnlp.backends.bedrock import BedrockBackend
from textnlp.backends.cloud import CloudContext
from textnlp.backends.openai_compat import OpenAICompatBackend
from textnlp.backends.sagemaker import SageMakerBackend
from textnlp.backends.spec import ModelSpec

#: Token counts of every batch answer.
BATCH_PROMPT_TOKENS = 10
BATCH_COMPLETION_TOKENS = 20
ONLINE_PROMPT_TOKENS = 12
ONLINE_COMPLETION_TOKENS = 30
#: USD per 1K tokens of the fake models (settings ``models.prices``).
PRICE = {"input_per_1k": 1.0, "output_per_1k": 2.0}


def online_cost() -> float:
    return (ONLINE_PROMPT_TOKENS * 1.0 + ONLINE_COMPLETION_TOKENS * 2.0) / 1000


def batch_cost() -> float:
    return (BATCH_PROMPT_TOKENS * 1.0 + BATCH_COMPLETION_TOKENS * 2.0) / 1000 * 0.5


def _index(custom: str) -> int:
    """The index at the end of a custom id (``record-3``, ``j<job>p0-3``, ``R0000000003``)."""
    found = re.search(r"(\d+)$", custom)
    assert found is not None, custom
    return int(found.group(1))


def _text_of(index: int, prompt: str, *, invalid: bool, where: str) -> str:
    if "JSON" not in prompt:
        return f"{where} answer {index}"
    if invalid:
        return json.dumps({"question": "?"})  # fails qa-pairs' schema (no answer, too short)
    return json.dumps({"question": f"{where} question {index}?", "answer": str(index)})


@dataclass
class World:
    #: The status a batch ends in (OpenAI: completed/expired/failed; Anthropic: ended;
    #: Bedrock: Completed/PartiallyCompleted/Expired/Failed).
    final_status: str = "completed"
    #: Why a Bedrock job ended ``Failed`` (its ``message``).
    failure_message: str = "Model validation failed"
    #: Polls that answer "in progress" before the batch ends.
    polls_before_end: int = 1
    errored: set[int] = field(default_factory=set)
    unprocessed: set[int] = field(default_factory=set)
    invalid: set[int] = field(default_factory=set)
    #: Called at each poll (the test cancels the job from here).
    on_poll: Callable[[], None] | None = None
    submitted: list[list[dict[str, Any]]] = field(default_factory=list)
    polls: int = 0
    cancelled: list[str] = field(default_factory=list)
    #: Records a batch answered before its cancel: a cancelled batch ends at its next poll
    #: (OpenAI ``cancelled``, Anthropic ``ended``, Bedrock ``Stopped``) with these answered
    #: (and billed), the rest not (Anthropic: ``canceled`` results).
    answered_before_cancel: set[int] = field(default_factory=set)
    #: Cancels answered with the provider's 500 before one is taken; every cancel asked.
    failing_cancels: int = 0
    cancel_calls: int = 0
    online: list[str] = field(default_factory=list)
    #: Bedrock: the moto S3 client and bucket the fake service reads and writes.
    s3: Any = None
    #: SageMaker: a plain client of moto's SageMaker (for a dropped create).
    sagemaker: Any = None
    #: The last CreateModelInvocationJob / CreateTransformJob request.
    _job: dict[str, Any] = field(default_factory=dict)
    _transform: dict[str, Any] = field(default_factory=dict)
    #: The next create makes its batch but the worker never hears of it (then resets).
    drop_create: bool = False
    #: The batches (OpenAI, Anthropic) or jobs (Bedrock, SageMaker) the provider created.
    created: list[str] = field(default_factory=list)
    #: When the batch was created (epoch seconds) and the metadata it was given (OpenAI).
    created_at: float = 0.0
    metadata: dict[str, str] = field(default_factory=dict)

    def reset(self) -> None:
        self.__dict__.clear()  # the request records too (``_job``, ``_written``, ...)
        self.__init__()  # type: ignore[misc]

    def _poll(self) -> bool:
        """One poll; True when the batch has ended."""
        self.polls += 1
        if self.on_poll is not None:
            self.on_poll()
        return bool(self.cancelled) or self.polls > self.polls_before_end

    def _cancel_fails(self) -> bool:
        self.cancel_calls += 1
        if self.failing_cancels > 0:
            self.failing_cancels -= 1
            return True
        return False

    def _skipped(self, index: int) -> bool:
        """Whether record ``index`` was never run: the batch expired first, or was cancelled."""
        if self.cancelled and index not in self.answered_before_cancel:
            return True
        return index in self.unprocessed

    # -- OpenAI -----------------------------------------------------------------------------
    def openai(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith("/chat/completions"):
            body = json.loads(request.content)
            prompt = " ".join(str(m["content"]) for m in body["messages"])
            self.online.append(prompt)
            return httpx2.Response(
                200,
                json=self._chat(_text_of(0, prompt, invalid=False, where="online"), online=True),
            )
        if path.endswith("/files") and request.method == "POST":
            lines = [json.loads(x) for x in re.findall(rb'\{"custom_id".*', request.content)]
            self.submitted.append(lines)
            return httpx2.Response(
                200,
                json={
                    "id": "file-abc123",
                    "object": "file",
                    "bytes": len(request.content),
                    "created_at": 1677610602,
                    "filename": "batch.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                },
            )
        if path.endswith("/batches") and request.method == "POST":
            self.metadata = json.loads(request.content).get("metadata") or {}
            self._create("batch_abc123")
            return httpx2.Response(200, json=self._openai_batch("validating"))
        if path.endswith("/batches") and request.method == "GET":
            # "List batch" (API reference): newest first, one page here.
            data = [self._openai_batch("in_progress")] if self.created else []
            first = data[0]["id"] if data else None
            return httpx2.Response(
                200,
                json={
                    "object": "list",
                    "data": data,
                    "first_id": first,
                    "last_id": first,
                    "has_more": False,
                },
            )
        if path.endswith("/cancel"):
            if self._cancel_fails():  # "Error codes": 500, a server error (retry later)
                return httpx2.Response(
                    500,
                    json={
                        "error": {
                            "message": "The server had an error while processing your request.",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    },
                )
            self.cancelled.append(path.split("/")[-2])
            return httpx2.Response(200, json=self._openai_batch("cancelling"))
        if re.search(r"/batches/[^/]+$", path):
            ended = self._poll()
            final = "cancelled" if self.cancelled else self.final_status
            return httpx2.Response(200, json=self._openai_batch(final if ended else "in_progress"))
        if path.endswith("/files/file-out/content"):
            return httpx2.Response(200, content=self._openai_output().encode())
        if path.endswith("/files/file-err/content"):
            return httpx2.Response(200, content=self._openai_errors().encode())
        raise AssertionError(f"unexpected OpenAI request {request.method} {path}")

    def _create(self, batch_id: str) -> None:
        """The provider made a batch; with ``drop_create`` its answer is lost on the way."""
        self.created.append(batch_id)
        self.created_at = time.time()
        if self.drop_create:
            self.drop_create = False
            raise httpx2.ConnectError("connection reset by peer after the request was sent")

    def _chat(self, text: str, *, online: bool) -> dict[str, Any]:
        prompt, completion = (
            (ONLINE_PROMPT_TOKENS, ONLINE_COMPLETION_TOKENS)
            if online
            else (BATCH_PROMPT_TOKENS, BATCH_COMPLETION_TOKENS)
        )
        return {
            "id": "chatcmpl-abc123",
            "object": "chat.completion",
            "created": 1677858242,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    def _lines(self) -> list[dict[str, Any]]:
        return [line for part in self.submitted for line in part]

    def _openai_batch(self, status: str) -> dict[str, Any]:
        lines = self._lines()
        ended = status in {"completed", "expired", "failed", "cancelled"}
        failed = len([x for x in lines if _index(x["custom_id"]) in self.errored])
        skipped = len([x for x in lines if self._skipped(_index(x["custom_id"]))])
        return {
            "id": "batch_abc123",
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": {
                "object": "list",
                "data": [{"code": "invalid_json_line", "message": "line 1 is not JSON"}],
            }
            if status == "failed"
            else None,
            "input_file_id": "file-abc123",
            "completion_window": "24h",
            "status": status,
            "output_file_id": "file-out" if ended and status != "failed" else None,
            "error_file_id": "file-err" if ended and status != "failed" else None,
            "created_at": int(self.created_at or 1711471533),
            "in_progress_at": 1711471538,
            "expires_at": 1711557933,
            "completed_at": 1711493163 if ended else None,
            "request_counts": {
                "total": len(lines),
                "completed": len(lines) - failed - (skipped if ended else 0),
                "failed": failed,
            },
            "metadata": self.metadata or {"customer_id": "user_123456789"},
        }

    def _openai_output(self) -> str:
        out = []
        for line in self._lines():
            index = _index(line["custom_id"])
            if self._skipped(index) or index in self.errored:
                continue
            prompt = " ".join(str(m["content"]) for m in line["body"]["messages"])
            text = _text_of(index, prompt, invalid=index in self.invalid, where="batch")
            out.append(
                {
                    "id": f"batch_req_{index}",
                    "custom_id": line["custom_id"],
                    "response": {
                        "status_code": 200,
                        "request_id": f"req_{index}",
                        "body": self._chat(text, online=False),
                    },
                    "error": None,
                }
            )
        return "".join(json.dumps(x) + "\n" for x in out)

    def _openai_errors(self) -> str:
        out = []
        for line in self._lines():
            index = _index(line["custom_id"])
            if index in self.errored:
                out.append(
                    {
                        "id": f"batch_req_{index}",
                        "custom_id": line["custom_id"],
                        "response": {
                            "status_code": 400,
                            "request_id": f"req_{index}",
                            "body": {
                                "error": {
                                    "message": "Invalid request",
                                    "type": "invalid_request_error",
                                    "param": None,
                                    "code": None,
                                }
                            },
                        },
                        "error": None,
                    }
                )
            elif index in self.unprocessed and index % 2 == 0:
                # Half of an expired batch's missing requests have a batch_expired line.
                out.append(
                    {
                        "id": f"batch_req_{index}",
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before "
                            "the completion window expired.",
                        },
                    }
                )
        return "".join(json.dumps(x) + "\n" for x in out)

    # -- Anthropic --------------------------------------------------------------------------
    def anthropic(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/v1/messages":
            body = json.loads(request.content)
            prompt = " ".join(c["text"] for m in body["messages"] for c in m["content"])
            self.online.append(prompt)
            return httpx2.Response(
                200, json=self._message(f"online answer {len(self.online)}", online=True)
            )
        if path == "/v1/messages/batches" and request.method == "POST":
            self.submitted.append(json.loads(request.content)["requests"])
            self._create("msgbatch_013Zva2CMHLNnXjNJJKqJ2EF")
            return httpx2.Response(200, json=self._anthropic_batch("in_progress"))
        if path == "/v1/messages/batches" and request.method == "GET":
            # "List Message Batches": newest first, one page here.
            data = [self._anthropic_batch("in_progress")] if self.created else []
            first = data[0]["id"] if data else None
            return httpx2.Response(
                200, json={"data": data, "has_more": False, "first_id": first, "last_id": first}
            )
        if path.endswith("/cancel"):
            if self._cancel_fails():  # "Errors": 500 api_error
                return httpx2.Response(
                    500,
                    json={
                        "type": "error",
                        "error": {"type": "api_error", "message": "Internal server error"},
                    },
                )
            self.cancelled.append(path.split("/")[-2])
            return httpx2.Response(200, json=self._anthropic_batch("canceling"))
        if path.endswith("/results"):
            return httpx2.Response(
                200,
                content=self._anthropic_results().encode(),
                headers={"content-type": "application/binary"},
            )
        if re.search(r"/batches/[^/]+$", path):
            ended = self._poll()
            return httpx2.Response(
                200, json=self._anthropic_batch("ended" if ended else "in_progress")
            )
        raise AssertionError(f"unexpected Anthropic request {request.method} {path}")

    def _message(self, text: str, *, online: bool) -> dict[str, Any]:
        prompt, completion = (
            (ONLINE_PROMPT_TOKENS, ONLINE_COMPLETION_TOKENS)
            if online
            else (BATCH_PROMPT_TOKENS, BATCH_COMPLETION_TOKENS)
        )
        return {
            "id": "msg_014VwiXbi91y3JMjcpyGBHX5",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }

    def _anthropic_batch(self, status: str) -> dict[str, Any]:
        batch_id = "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"
        lines = self._lines()
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": 0 if status == "ended" else len(lines),
                "succeeded": 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "ended_at": "2024-09-25T18:37:24.100435Z" if status == "ended" else None,
            "created_at": datetime.fromtimestamp(self.created_at or 1727202000, UTC).isoformat(),
            "expires_at": "2024-09-25T18:37:24.100435Z",
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results"
            if status == "ended"
            else None,
        }

    def _anthropic_results(self) -> str:
        out = []
        for line in self._lines():
            index = _index(line["custom_id"])
            if index in self.errored:
                result: dict[str, Any] = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": "max_tokens: Field required",
                        },
                    },
                }
            elif self.cancelled and index not in self.answered_before_cancel:
                result = {"type": "canceled"}
            elif index in self.unprocessed:
                result = {"type": "expired"}
            else:
                result = {
                    "type": "succeeded",
                    "message": self._message(f"batch answer {index}", online=False),
                }
            out.append({"custom_id": line["custom_id"], "result": result})
        return "".join(json.dumps(x) + "\n" for x in out)

    # -- Bedrock ----------------------------------------------------------------------------
    def bedrock_control(self, request: Any, **kwargs: Any) -> AWSResponse:
        path = request.url.split("amazonaws.com", 1)[-1].split("?")[0]
        path = re.sub(r"^https?://[^/]+", "", path)
        body = request.body.read() if hasattr(request.body, "read") else request.body
        arn = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/ab12cd34ef56"
        if request.method == "POST" and path == "/model-invocation-job":
            created = json.loads(body)
            if self.created and created["clientRequestToken"] == self._job["clientRequestToken"]:
                return _aws(200, {"jobArn": arn})  # a repeated token: the same job
            if self.created and created["jobName"] == self._job["jobName"]:
                return _aws_error(400, "ConflictException", "The job name is already in use")
            self._job = created
            self.submitted.append(
                self._s3_lines(created["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
            )
            self.created.append(arn)
            self.created_at = time.time()
            if self.drop_create:
                self.drop_create = False
                raise ConnectionClosedError(endpoint_url=request.url)
            return _aws(200, {"jobArn": arn})
        if request.method == "GET" and path == "/model-invocation-jobs":
            # ListModelInvocationJobs (nameContains): the summaries of the matching jobs.
            query = parse_qs(urlsplit(request.url).query)
            wanted = query.get("nameContains", [""])[0]
            jobs = [self._job] if self.created and wanted in self._job["jobName"] else []
            summaries = [
                {
                    "jobArn": arn,
                    "jobName": job["jobName"],
                    "modelId": job["modelId"],
                    "roleArn": job["roleArn"],
                    "status": "Submitted",
                    "submitTime": "2024-09-24T18:37:24Z",
                    "inputDataConfig": job["inputDataConfig"],
                    "outputDataConfig": job["outputDataConfig"],
                }
                for job in jobs
            ]
            return _aws(200, {"invocationJobSummaries": summaries})
        if request.method == "POST" and path.endswith("/stop"):
            if self._cancel_fails():
                return _aws_error(500, "InternalServerException", "An internal server error")
            self.cancelled.append(arn)
            return _aws(200, {})
        if request.method == "GET" and path.startswith("/model-invocation-job/"):
            ended = self._poll()
            final = "Stopped" if self.cancelled else self.final_status
            status = final if ended else "InProgress"
            if ended and not getattr(self, "_written", False):
                self._write_bedrock_output(arn)
                self._written = True
            job = self._job
            return _aws(
                200,
                {
                    "jobArn": arn,
                    "jobName": job["jobName"],
                    "modelId": job["modelId"],
                    "roleArn": job["roleArn"],
                    "status": status,
                    "message": self.failure_message if status == "Failed" else None,
                    "submitTime": "2024-09-24T18:37:24Z",
                    "lastModifiedTime": "2024-09-24T19:37:24Z",
                    "inputDataConfig": job["inputDataConfig"],
                    "outputDataConfig": job["outputDataConfig"],
                    "totalRecordCount": len(self._lines()),
                },
            )
        raise AssertionError(f"unexpected Bedrock request {request.method} {path}")

    def _s3_lines(self, uri: str) -> list[dict[str, Any]]:
        bucket, key = uri[len("s3://") :].split("/", 1)
        data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return [json.loads(x) for x in data.splitlines() if x.strip()]

    def _write_bedrock_output(self, arn: str) -> None:
        job = self._job
        out_uri = job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
        in_uri = job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
        bucket, prefix = out_uri[len("s3://") :].split("/", 1)
        job_id = arn.rsplit("/", 1)[-1]
        out = []
        for line in self._lines():
            index = _index(line["recordId"])
            if self._skipped(index):
                continue
            record: dict[str, Any] = {
                "recordId": line["recordId"],
                "modelInput": line["modelInput"],
            }
            if index in self.errored:
                record["error"] = {"errorCode": 400, "errorMessage": "Malformed input request"}
            else:
                record["modelOutput"] = self._message(f"batch answer {index}", online=False)
            out.append(record)
        name = in_uri.rsplit("/", 1)[-1]
        self.s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}{job_id}/{name}.out",
            Body="".join(json.dumps(x) + "\n" for x in out).encode(),
        )
        manifest = {
            "totalRecordCount": len(self._lines()),
            "processedRecordCount": len(out),
            "successRecordCount": len([x for x in out if "modelOutput" in x]),
            "errorRecordCount": len([x for x in out if "error" in x]),
        }
        self.s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}{job_id}/manifest.json.out",
            Body=json.dumps(manifest).encode(),
        )

    # -- SageMaker --------------------------------------------------------------------------
    def sagemaker_control(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        """Before moto's SageMaker: ``CreateTransformJob`` runs the "model" on the input in S3
        and writes the ``.out`` file (moto keeps the job record and answers ``Completed``);
        ``StopTransformJob``, which moto lacks, is answered here."""
        target = _text(request.headers.get("X-Amz-Target", b""))
        if target.endswith(".StopTransformJob"):
            self.cancelled.append(json.loads(request.body)["TransformJobName"])
            return _aws(200, {})
        if not target.endswith(".CreateTransformJob"):
            return None  # moto answers
        body = request.body.read() if hasattr(request.body, "read") else request.body
        created = json.loads(body)
        self._transform = created
        uri = created["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        lines = self._s3_lines(uri)
        self.submitted.append(lines)
        self.created.append(created["TransformJobName"])
        self.created_at = time.time()
        self._write_transform_output(uri, created["TransformOutput"]["S3OutputPath"], lines)
        if self.drop_create:
            self.drop_create = False
            self.sagemaker.create_transform_job(**created)  # moto makes the job; no answer
            raise ConnectionClosedError(endpoint_url=request.url)
        return None

    def _write_transform_output(self, in_uri: str, out_uri: str, lines: list[Any]) -> None:
        """``<input file>.out``: each processed line's ``id`` joined with the container's
        answer (``JoinSource: Input``, ``OutputFilter: $['id','SageMakerOutput']``)."""
        bucket, prefix = out_uri[len("s3://") :].split("/", 1)
        out = []
        for line in lines:
            index = _index(line["id"])
            if index in self.unprocessed:
                continue
            if index in self.invalid:
                out.append({"id": line["id"], "SageMakerOutput": "not a TGI answer"})
                continue
            text = _text_answer(index, line["body"]["inputs"], where="batch")
            out.append({"id": line["id"], "SageMakerOutput": _tgi(text, online=False)})
        self.s3.put_object(
            Bucket=bucket,
            Key=f"{prefix.rstrip('/')}/{in_uri.rsplit('/', 1)[-1]}.out",
            Body="".join(json.dumps(x) + "\n" for x in out).encode(),
        )

    def sagemaker_runtime(self, request: Any, **kwargs: Any) -> AWSResponse:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        prompt = json.loads(body)["inputs"]
        self.online.append(prompt)
        answer = _text_answer(len(self.online), prompt, where="online")
        return _aws_list(200, [_tgi(answer, online=True)])

    def bedrock_runtime(self, request: Any, **kwargs: Any) -> AWSResponse:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        sent = json.loads(body)
        prompt = " ".join(c["text"] for m in sent["messages"] for c in m["content"])
        self.online.append(prompt)
        return _aws(200, self._message(f"online answer {len(self.online)}", online=True))


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        yield self._data

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return self._data


def _aws(status: int, body: dict[str, Any]) -> AWSResponse:
    data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
    return AWSResponse(
        "https://bedrock.test", status, {"Content-Type": "application/json"}, _Raw(data)
    )


def _aws_list(status: int, body: list[Any]) -> AWSResponse:
    headers = {"Content-Type": "application/json"}
    return AWSResponse("https://sagemaker.test", status, headers, _Raw(json.dumps(body).encode()))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _text_answer(index: int, prompt: str, *, where: str) -> str:
    return _text_of(index, prompt, invalid=False, where=where)


def _tgi(text: str, *, online: bool) -> dict[str, Any]:
    """A TGI ``/generate`` answer (``details`` on): its tokens as the other fakes count them."""
    prompt, completion = (
        (ONLINE_PROMPT_TOKENS, ONLINE_COMPLETION_TOKENS)
        if online
        else (BATCH_PROMPT_TOKENS, BATCH_COMPLETION_TOKENS)
    )
    return {
        "generated_text": text,
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": completion,
            "seed": 42,
            "prefill": [{"id": i, "text": "t", "logprob": None} for i in range(prompt)],
        },
    }


def _aws_error(status: int, code: str, message: str) -> AWSResponse:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:"}
    data = json.dumps({"message": message}).encode()
    return AWSResponse("https://bedrock.test", status, headers, _Raw(data))


WORLD = World()


class OpenAIBatchFake(OpenAICompatBackend):
    name = "openai-batch-fake"

    def __init__(self, spec: ModelSpec, *, context: CloudContext | None = None) -> None:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(WORLD.openai))
        super().__init__(spec, context=context, http_client=client)


class AnthropicBatchFake(AnthropicBackend):
    name = "anthropic-batch-fake"

    def __init__(self, spec: ModelSpec, *, context: CloudContext | None = None) -> None:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(WORLD.anthropic))
        super().__init__(spec, context=context, http_client=client)


class SageMakerBatchFake(SageMakerBackend):
    name = "sagemaker-batch-fake"

    async def _open(self, context: CloudContext) -> None:
        await super()._open(context)
        self._client.meta.events.register("before-send", WORLD.sagemaker_runtime)


class BedrockBatchFake(BedrockBackend):
    name = "bedrock-batch-fake"

    async def _open(self, context: CloudContext) -> None:
        await super()._open(context)
        self._client.meta.events.register("before-send", WORLD.bedrock_runtime)


def register() -> None:
    from textnlp.backends.options import (
        AnthropicOptions,
        BedrockOptions,
        OpenAIOptions,
        SageMakerOptions,
    )
    from textnlp.backends.registry import register_backend

    here = "tests.support.provider_batches"
    register_backend("openai-batch-fake", f"{here}:OpenAIBatchFake", OpenAIOptions)
    register_backend("anthropic-batch-fake", f"{here}:AnthropicBatchFake", AnthropicOptions)
    register_backend("bedrock-batch-fake", f"{here}:BedrockBatchFake", BedrockOptions)
    register_backend("sagemaker-batch-fake", f"{here}:SageMakerBatchFake", SageMakerOptions)


MODELS_YAML = """
models:
  - id: gpt-batch
    backend: openai-batch-fake
    endpoint: https://api.openai.test/v1
    context_length: 128000
    defaults: {max_tokens: 64}
  - id: claude-batch
    backend: anthropic-batch-fake
    endpoint: claude-sonnet-4-5
    context_length: 200000
    defaults: {max_tokens: 64}
  - id: claude-bedrock-batch
    backend: bedrock-batch-fake
    endpoint: anthropic.claude-3-haiku-20240307-v1:0
    context_length: 200000
    defaults: {max_tokens: 64}
    options: {api: invoke, region: us-east-1}
  - id: llama-batch
    backend: sagemaker-batch-fake
    endpoint: textnlp-batch-endpoint
    context_length: 2048
    chat: false
    defaults: {max_tokens: 64}
    options: {target_variant: llama-7b, region: us-east-1}
"""
