"""OpenAI's file and batch objects, and the lines of a batch's output and error files (shapes
and translation only; ``services.openai_batches`` stores and serves them).

The fields are those of the ``openai`` SDK's types (``FileObject``, ``Batch``,
``BatchRequestCounts``, ``BatchError``, ``batch_create_params``). An output line is
``{id, custom_id, response: {status_code, request_id, body}, error}`` whose body is a
``chat.completion`` or ``text_completion`` object built from the stored record; its ids are
derived from (job, index), so the file is the same bytes however often it is written.

An error file's lines are OpenAI's too: a request the backend refused is answered as the
online API would have answered it, ``response: {status_code: 400, request_id, body: {error:
{message, type, param, code}}}`` with ``error: null`` (OpenAI keeps the top-level ``error`` for
failures that are not an HTTP answer); a request never answered has ``response: null`` and
``error: {code, message}``, ``batch_expired`` (the completion window ended) or
``batch_failed`` (the batch failed).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from textnlp.domain import Record
from textnlp.services.batch_requests import CHAT_COMPLETIONS, BatchRequestItem

_FINISH_REASONS = {"stop": "stop", "length": "length", "error": "stop"}


# -- OpenAI's objects ---------------------------------------------------------------------------
class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: Literal["batch", "batch_output"]
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class BatchRequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchError(BaseModel):
    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchError]


BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]


class Batch(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    model: str | None = None
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str = "24h"
    status: BatchStatus
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: BatchRequestCounts
    metadata: dict[str, str] | None = None


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Batch]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class _ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=2_592_000)


#: Metadata as OpenAI bounds it: at most 16 keys of up to 64 characters, values up to 512.
Metadata = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)], Annotated[str, Field(max_length=512)]],
    Field(max_length=16),
]


class BatchCreate(BaseModel):
    """``POST /v1/batches``."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(max_length=100)
    #: The endpoints a TextNLP batch runs (a job's records are generated text: no embeddings).
    endpoint: Literal["/v1/chat/completions", "/v1/completions"]
    completion_window: Literal["24h"]
    metadata: Metadata | None = None
    #: Accepted for compatibility; TextNLP keeps output files with their batch.
    output_expires_after: _ExpiresAfter | None = None


# -- what is stored beside files and jobs ------------------------------------------------------
class FileInfo(BaseModel):
    """The description of an uploaded batch file (``file-<hex>.json``)."""

    id: str
    filename: str
    bytes: int
    created_at: int
    endpoint: str
    model: str
    requests: int
    #: The largest ``max_tokens`` of a line, and that line (checked against the model's context).
    max_tokens: int | None = None
    max_tokens_line: int | None = None


class BatchExtras(BaseModel):
    """What a batch has that its job does not (``generated/batch-jobs/<job>/openai/batch.json``)."""

    endpoint: str
    input_file_id: str
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None
    #: When its completion window ends (unix seconds); None: a batch of before windows were
    #: kept, which does not expire.
    expires_at: int | None = None


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32]


# -- the lines of output and error files -------------------------------------------------------
class _Response(BaseModel):
    status_code: int
    request_id: str
    body: dict[str, Any]


class _LineError(BaseModel):
    code: str
    message: str


class OutputLine(BaseModel):
    id: str
    custom_id: str
    response: _Response | None
    error: _LineError | None


def answer_line(job_id: str, record: Record, endpoint: str) -> OutputLine:
    """Record ``i`` as line ``i`` of the output (or error) file, in OpenAI's shape."""
    custom_id = str(record.variables.get("custom_id", ""))
    key = _digest(job_id, record.index)
    refusal = record.data or {}
    if record.status != "ok" and "status_code" in refusal:  # ``batch_requests.line_failure``
        error = {name: refusal.get(name) for name in ("message", "type", "param", "code")}
        return OutputLine(
            id=f"batch_req_{key}",
            custom_id=custom_id,
            response=_Response(
                status_code=int(refusal["status_code"]),
                request_id=f"req_{key}",
                body={"error": error},
            ),
            error=None,
        )
    if record.status != "ok":
        return OutputLine(
            id=f"batch_req_{key}",
            custom_id=custom_id,
            response=None,
            error=_LineError(code="invalid_output", message=record.error or "failed"),
        )
    prov = record.provenance
    created = int(datetime.fromisoformat(prov.created_at).timestamp())
    finish = _FINISH_REASONS[prov.finish_reason]
    usage = {
        "prompt_tokens": prov.prompt_tokens,
        "completion_tokens": prov.completion_tokens,
        "total_tokens": prov.prompt_tokens + prov.completion_tokens,
    }
    body: dict[str, Any]
    if endpoint == CHAT_COMPLETIONS:
        message = {"role": "assistant", "content": record.text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        body = {"id": f"chatcmpl-{key}", "object": "chat.completion"}
    else:
        choice = {"index": 0, "text": record.text, "logprobs": None, "finish_reason": finish}
        body = {"id": f"cmpl-{key}", "object": "text_completion"}
    body |= {"created": created, "model": prov.model, "choices": [choice], "usage": usage}
    return OutputLine(
        id=f"batch_req_{key}",
        custom_id=custom_id,
        response=_Response(status_code=200, request_id=f"req_{key}", body=body),
        error=None,
    )


#: OpenAI's words for a request its batch's completion window left unanswered.
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def missing_line(
    job_id: str, index: int, item: BatchRequestItem, code: str, message: str
) -> OutputLine:
    """Line ``index`` of a batch that ended (failed or expired) before answering it."""
    return OutputLine(
        id=f"batch_req_{_digest(job_id, index)}",
        custom_id=item.custom_id,
        response=None,
        error=_LineError(code=code, message=message),
    )
