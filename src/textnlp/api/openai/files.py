"""OpenAI's Files API for batches: ``POST /v1/files`` (purpose ``batch``), ``GET /v1/files``,
``GET /v1/files/{id}``, ``GET /v1/files/{id}/content`` and ``DELETE /v1/files/{id}``.

An upload is checked line by line before it is stored (a bad line answers 400 naming it).
Its size is bounded by ``api.max_file_bytes`` (OpenAI's 200 MB), this route's own body bound
in ``RequestContextMiddleware`` rather than ``api.max_body_bytes``; a larger one answers 413 in
OpenAI's error object. The multipart parser spools the file to disk past 1 MB, and the service
reads it from there in chunks: a large upload is never in memory whole. A batch's output and
error files are read and listed here too. Someone else's file answers 404, like a missing one.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from textnlp.api.openai.batches import BatchesDep, owner_of
from textnlp.api.openai.caller import OpenAICaller
from textnlp.api.openai.schemas import OpenAIErrorResponse
from textnlp.errors import InvalidInput
from textnlp.services.openai_objects import FileDeleted, FileList, FileObject

router = APIRouter(prefix="/v1", tags=["openai"])
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": OpenAIErrorResponse,
        "description": "A batch's output file, or the input of a batch in progress, is kept.",
    }
}


@router.post("/files", response_model=FileObject)
async def create_file(
    file: Annotated[UploadFile, File(description="A JSONL file of batch requests.")],
    purpose: Annotated[Literal["batch"], Form(description="Only `batch` files are kept.")],
    caller: OpenAICaller,
    request: Request,
    response: Response,
    batches: BatchesDep,
) -> FileObject:
    """Upload a batch input file: one request per line (custom_id, method, url, body)."""
    owner = owner_of(caller, response)
    parts = len((await request.form()).getlist("file"))  # parsed once: FastAPI's own form
    if parts > 1:  # FastAPI would keep the last and drop the others unsaid
        raise InvalidInput(f"file: send one file per upload, not {parts}")
    name = file.filename or ""
    return await run_in_threadpool(batches.upload, owner, name, purpose, file.file)


@router.get("/files", response_model=FileList)
def list_files(
    caller: OpenAICaller,
    response: Response,
    batches: BatchesDep,
    purpose: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Literal["asc", "desc"] = "desc",
) -> FileList:
    """Your files: uploaded batch files and your ended batches' output and error files
    (``purpose``: ``batch``, ``batch_output``), newest first unless ``order=asc``."""
    owner = owner_of(caller, response)
    newest_first = order == "desc"
    return batches.files(
        owner, after=after, limit=limit, purpose=purpose, newest_first=newest_first
    )


@router.get("/files/{file_id}", response_model=FileObject)
def retrieve_file(
    file_id: str, caller: OpenAICaller, response: Response, batches: BatchesDep
) -> FileObject:
    return batches.file(owner_of(caller, response), file_id)


@router.get(
    "/files/{file_id}/content",
    response_class=Response,
    responses={200: {"description": "The file's bytes (JSONL)."}},
)
def file_content(
    file_id: str, caller: OpenAICaller, response: Response, batches: BatchesDep
) -> StreamingResponse:
    """A file's bytes: an uploaded file, or a finished batch's output or error file."""
    content = batches.content(owner_of(caller, response), file_id)
    filename = re.sub(r"[^A-Za-z0-9._ -]", "_", content.filename)  # a header's characters
    return StreamingResponse(
        batches.chunks(content),
        media_type="application/x-ndjson",
        headers={
            **caller.headers,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(content.size),
        },
    )


@router.delete("/files/{file_id}", response_model=FileDeleted, responses=_CONFLICT)
def delete_file(
    file_id: str, caller: OpenAICaller, response: Response, batches: BatchesDep
) -> FileDeleted:
    """Delete an uploaded file."""
    return batches.delete_file(owner_of(caller, response), file_id)
