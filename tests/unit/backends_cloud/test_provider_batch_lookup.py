"""Provider batches over their SDKs and botocore, faked at the transport (bodies from the
providers' API references): how each finds the batch of a part whose submit answer was lost
(``find``: OpenAI by metadata, Anthropic by size, time and custom ids, Bedrock by job name;
SageMaker's in ``test_sagemaker_batch``), and the tags each submit carries."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import httpx2
import pytest

from tests.unit.backends_cloud.fakes import AwsFake, aws_error, json_response
from tests.unit.backends_cloud.memory_files import JOB, MemoryFiles
from textnlp.backends.anthropic_api import AnthropicBackend
from textnlp.backends.batch import anthropic_lines
from textnlp.backends.batch.anthropic import AnthropicBatch
from textnlp.backends.batch.base import BatchLine
from textnlp.backends.batch.bedrock import BedrockBatch
from textnlp.backends.batch.openai import OpenAIBatch
from textnlp.backends.bedrock import BedrockBackend
from textnlp.backends.cloud import CloudContext
from textnlp.backends.openai_compat import OpenAICompatBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest

pytestmark = pytest.mark.usefixtures("fake_aws_credentials")

PARAMS = GenerationParams(max_tokens=32, temperature=0.7, top_p=0.9)
ROLE = "arn:aws:iam::123456789012:role/textnlp-bedrock-batch"


def lines(count: int = 3) -> list[BatchLine]:
    return [
        BatchLine(i, GenerationRequest(prompt=f"Tell me about {i}", params=PARAMS), b"{}")
        for i in range(count)
    ]


class Http:
    """An ``httpx2.MockTransport`` handler: ``routes`` maps (method, path) to a JSON body or a
    callable; the requests it saw are kept."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            raise AssertionError(f"unexpected {request.method} {request.url}")
        if callable(answer):
            return answer(request)
        return httpx2.Response(200, json=answer)

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self))


# -- OpenAI -------------------------------------------------------------------------------------
def openai_batch(batch_id: str, created_at: float, metadata: dict[str, str]) -> dict[str, Any]:
    """OpenAI API reference, "The batch object"."""
    return {
        "id": batch_id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-abc123",
        "completion_window": "24h",
        "status": "in_progress",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": int(created_at),
        "in_progress_at": int(created_at) + 5,
        "expires_at": int(created_at) + 86400,
        "request_counts": {"total": 3, "completed": 0, "failed": 0},
        "metadata": metadata,
    }


async def openai_provider(context: CloudContext, http: Http) -> OpenAIBatch:
    spec = ModelSpec(
        id="gpt-batch", backend="openai", endpoint="https://api.openai.test/v1", chat=True
    )
    backend = OpenAICompatBackend(spec, context=context, http_client=http.client())
    await backend.load()
    return OpenAIBatch(backend)


async def test_openai_find_matches_the_job_and_part_in_batch_metadata(
    context: CloudContext,
) -> None:
    now = time.time()
    page = {
        "object": "list",
        "data": [
            openai_batch("batch_other_part", now, {"textnlp_job": JOB, "textnlp_part": "1"}),
            openai_batch("batch_someone", now - 5, {"customer_id": "user_123456789"}),
            openai_batch("batch_mine", now - 10, {"textnlp_job": JOB, "textnlp_part": "0"}),
        ],
        "first_id": "batch_other_part",
        "last_id": "batch_mine",
        "has_more": False,
    }
    http = Http({("GET", "/v1/batches"): page})
    provider = await openai_provider(context, http)
    assert await provider.find(JOB, 0, lines(), now - 60) == "batch_mine"
    assert await provider.find(JOB, 2, lines(), now - 60) is None
    assert http.requests[0].url.params["limit"] == "100"


async def test_openai_find_stops_at_batches_older_than_the_submit(context: CloudContext) -> None:
    now = time.time()
    page = {
        "object": "list",
        "data": [
            openai_batch("batch_new", now, {}),
            # The part's metadata, but a day before its submit began: another attempt's past.
            openai_batch("batch_old", now - 86400, {"textnlp_job": JOB, "textnlp_part": "0"}),
        ],
        "first_id": "batch_new",
        "last_id": "batch_old",
        "has_more": True,
    }
    http = Http({("GET", "/v1/batches"): page})
    provider = await openai_provider(context, http)
    assert await provider.find(JOB, 0, lines(), now) is None
    assert len(http.requests) == 1  # no second page asked for


async def test_openai_submit_tags_the_batch_with_job_and_part(context: CloudContext) -> None:
    now = time.time()
    upload = {
        "id": "file-abc123",
        "object": "file",
        "bytes": 120,
        "created_at": int(now),
        "filename": "batch.jsonl",
        "purpose": "batch",
    }
    http = Http(
        {
            ("POST", "/v1/files"): upload,
            ("POST", "/v1/batches"): openai_batch("batch_abc123", now, {}),
        }
    )
    provider = await openai_provider(context, http)
    assert await provider.submit(JOB, 4, lines()) == "batch_abc123"
    body = json.loads(http.requests[1].content)
    assert body["metadata"] == {"textnlp_job": JOB, "textnlp_part": "4"}
    assert body["input_file_id"] == "file-abc123" and body["completion_window"] == "24h"


# -- Anthropic ----------------------------------------------------------------------------------
def message_batch(batch_id: str, created_at: float, status: str, size: int) -> dict[str, Any]:
    """Anthropic API reference, "Message Batches": a batch as the list answers it."""
    ended = status == "ended"
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": 0 if ended else size,
            "succeeded": size if ended else 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "ended_at": "2024-08-20T18:37:24.100435Z" if ended else None,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created_at)),
        "expires_at": "2024-08-21T18:37:24.100435Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results"
        if ended
        else None,
    }


def results_of(*custom_ids: str) -> Callable[[httpx2.Request], httpx2.Response]:
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 36},
    }
    body = "".join(
        json.dumps({"custom_id": c, "result": {"type": "succeeded", "message": message}}) + "\n"
        for c in custom_ids
    )

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=body.encode(), headers={"content-type": "application/binary"}
        )

    return answer


async def anthropic_provider(context: CloudContext, http: Http) -> AnthropicBatch:
    spec = ModelSpec(
        id="claude-batch", backend="anthropic", endpoint="claude-sonnet-4-5", context_length=200000
    )
    backend = AnthropicBackend(spec, context=context, http_client=http.client())
    await backend.load()
    return AnthropicBatch(backend)


def anthropic_list(*batches: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": list(batches),
        "has_more": False,
        "first_id": batches[0]["id"] if batches else None,
        "last_id": batches[-1]["id"] if batches else None,
    }


async def test_anthropic_find_checks_an_ended_batch_by_its_custom_ids(
    context: CloudContext,
) -> None:
    now = time.time()
    prefix = anthropic_lines.part_prefix(JOB, 0)
    http = Http(
        {
            ("GET", "/v1/messages/batches"): anthropic_list(
                message_batch("msgbatch_other_size", now, "in_progress", 5),
                message_batch("msgbatch_foreign", now, "ended", 3),
                message_batch("msgbatch_mine", now - 5, "ended", 3),
                message_batch("msgbatch_before", now - 7200, "in_progress", 3),
            ),
            # ``results`` retrieves the batch for its results_url first.
            ("GET", "/v1/messages/batches/msgbatch_foreign"): message_batch(
                "msgbatch_foreign", now, "ended", 3
            ),
            ("GET", "/v1/messages/batches/msgbatch_mine"): message_batch(
                "msgbatch_mine", now - 5, "ended", 3
            ),
            ("GET", "/v1/messages/batches/msgbatch_foreign/results"): results_of(
                "jsomeoneelsep0-0", "jsomeoneelsep0-1", "jsomeoneelsep0-2"
            ),
            ("GET", "/v1/messages/batches/msgbatch_mine/results"): results_of(
                f"{prefix}0", f"{prefix}1", f"{prefix}2"
            ),
        }
    )
    provider = await anthropic_provider(context, http)
    assert await provider.find(JOB, 0, lines(), now - 60) == "msgbatch_mine"


async def test_anthropic_find_takes_the_running_batch_made_nearest_the_submit(
    context: CloudContext,
) -> None:
    now = time.time()
    http = Http(
        {
            ("GET", "/v1/messages/batches"): anthropic_list(
                message_batch("msgbatch_second", now, "in_progress", 3),
                message_batch("msgbatch_first", now - 20, "in_progress", 3),
                message_batch("msgbatch_too_old", now - 7200, "in_progress", 3),
            )
        }
    )
    provider = await anthropic_provider(context, http)
    assert await provider.find(JOB, 0, lines(), now - 30) == "msgbatch_first"
    assert await provider.find(JOB, 0, lines(4), now - 30) is None  # no batch of 4 requests


async def test_anthropic_submit_tags_custom_ids_and_results_read_only_the_parts(
    context: CloudContext,
) -> None:
    now = time.time()
    prefix = anthropic_lines.part_prefix(JOB, 2)
    sent: list[dict[str, Any]] = []

    def create(request: httpx2.Request) -> httpx2.Response:
        sent.extend(json.loads(request.content)["requests"])
        return httpx2.Response(200, json=message_batch("msgbatch_new", now, "in_progress", 3))

    http = Http(
        {
            ("POST", "/v1/messages/batches"): create,
            ("GET", "/v1/messages/batches/msgbatch_new"): message_batch(
                "msgbatch_new", now, "ended", 3
            ),
            ("GET", "/v1/messages/batches/msgbatch_new/results"): results_of(
                f"{prefix}0", "record-1", anthropic_lines.part_prefix(JOB, 3) + "2"
            ),
        }
    )
    provider = await anthropic_provider(context, http)
    made = [BatchLine(x.index, x.request, provider.encode(x.index, x.request)) for x in lines()]
    assert await provider.submit(JOB, 2, made) == "msgbatch_new"
    assert [entry["custom_id"] for entry in sent] == [f"{prefix}{i}" for i in range(3)]
    assert all(len(entry["custom_id"]) <= 64 for entry in sent)
    requests = {x.index: x.request for x in made}
    found = await provider.results("msgbatch_new", requests, job_id=JOB, part=2)
    assert list(found) == [0]  # "record-1" and part 3's id are not this part's answers


def test_part_prefix_hashes_job_ids_that_would_not_fit() -> None:
    assert anthropic_lines.part_prefix("abc123", 7) == "jabc123p7-"
    long = anthropic_lines.part_prefix("job id with spaces / and more than thirty-two chars", 0)
    assert len(long) == 1 + 32 + 3 and long.startswith("j") and long.endswith("p0-")


# -- Bedrock ------------------------------------------------------------------------------------
async def bedrock_provider(context: CloudContext) -> tuple[BedrockBatch, AwsFake]:
    spec = ModelSpec(
        id="claude-bedrock",
        backend="bedrock",
        endpoint="anthropic.claude-3-haiku-20240307-v1:0",
        context_length=200000,
        options={"api": "invoke"},
    )
    backend = BedrockBackend(spec, context=context)
    await backend.load()
    client = boto3.client("bedrock", region_name="us-east-1")
    return BedrockBatch(backend, MemoryFiles(), ROLE, client), AwsFake(client)


async def test_bedrock_create_of_a_name_in_use_finds_that_job(context: CloudContext) -> None:
    provider, fake = await bedrock_provider(context)
    arn = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/ab12cd34ef56"
    summary = {
        "jobArn": arn,
        "jobName": f"textnlp-{JOB}-part-0",
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "roleArn": ROLE,
        "status": "InProgress",
        "submitTime": "2024-09-24T18:37:24Z",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/in.jsonl"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/out/"}},
    }
    other = {**summary, "jobName": f"textnlp-{JOB}-part-0-copy", "jobArn": arn + "x"}
    fake.queue(
        aws_error("ConflictException", "The job name is already in use", 400),
        json_response({"invocationJobSummaries": [other], "nextToken": "page-2"}),
        json_response({"invocationJobSummaries": [summary]}),
    )
    assert await provider.submit(JOB, 0, lines()) == arn
    created = fake.requests[0].json()
    assert created["jobName"] == f"textnlp-{JOB}-part-0"
    assert created["clientRequestToken"] == f"{JOB}-0"
    assert "nameContains=textnlp-" in fake.requests[1].url
    assert "nextToken=page-2" in fake.requests[2].url


async def test_bedrock_find_is_none_without_a_job_of_that_name(context: CloudContext) -> None:
    provider, fake = await bedrock_provider(context)
    fake.queue(json_response({"invocationJobSummaries": []}))
    assert await provider.find(JOB, 1, lines(), time.time()) is None
