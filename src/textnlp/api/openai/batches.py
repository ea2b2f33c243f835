"""OpenAI's Batch API: ``POST /v1/batches``, ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel`` and ``GET /v1/batches``.

The router parses, authorises and renders; ``OpenAIBatchService`` maps batches onto jobs
(``services.openai_batches``). Someone else's batch answers 404, like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from textnlp.api.openai.caller import Caller, OpenAICaller
from textnlp.api.openai.schemas import OpenAIErrorResponse
from textnlp.services.job_models import Owner
from textnlp.services.openai_batches import OpenAIBatchService
from textnlp.services.openai_objects import Batch, BatchCreate, BatchList

router = APIRouter(prefix="/v1", tags=["openai"])
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": OpenAIErrorResponse,
        "description": "The batch has ended: it cannot be cancelled.",
    }
}


def get_openai_batches(request: Request) -> OpenAIBatchService:
    service: OpenAIBatchService = request.app.state.openai_batches
    return service


BatchesDep = Annotated[OpenAIBatchService, Depends(get_openai_batches)]


def owner_of(caller: Caller, response: Response) -> Owner:
    """The caller as an owner of files and batches; their rate-limit headers on the answer."""
    response.headers.update(caller.headers)
    return Owner(id=str(caller.principal.id))


@router.post("/batches", response_model=Batch)
def create_batch(
    body: BatchCreate, caller: OpenAICaller, response: Response, batches: BatchesDep
) -> Batch:
    """A batch of an uploaded file's requests, run by the workers as a TextNLP job."""
    return batches.create(owner_of(caller, response), body)


@router.get("/batches", response_model=BatchList)
def list_batches(
    caller: OpenAICaller,
    response: Response,
    batches: BatchesDep,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    """Your batches, newest first."""
    return batches.list_batches(owner_of(caller, response), after=after, limit=limit)


@router.get("/batches/{batch_id}", response_model=Batch)
def retrieve_batch(
    batch_id: str, caller: OpenAICaller, response: Response, batches: BatchesDep
) -> Batch:
    """A batch's status, request counts and (once it has ended) its output and error files."""
    return batches.retrieve(owner_of(caller, response), batch_id)


@router.post("/batches/{batch_id}/cancel", response_model=Batch, responses=_CONFLICT)
def cancel_batch(
    batch_id: str, caller: OpenAICaller, response: Response, batches: BatchesDep
) -> Batch:
    """Cancel a batch that has not ended (a running one stops at its next checkpoint)."""
    return batches.cancel(owner_of(caller, response), batch_id)
