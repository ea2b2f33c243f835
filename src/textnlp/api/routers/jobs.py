"""Batch-job routes: submit, status, cancel, delete, results, prompt-file uploads.

The router only parses, authorises and renders; ``JobService`` (built by the app's
``Platform``) does the work. Someone else's job answers 404, like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from textnlp.api.deps import CurrentUser
from textnlp.api.downloads import result_response
from textnlp.services.job_models import JobSpec, JobView, Owner, UploadList
from textnlp.services.jobs import MAX_UPLOAD_KEY_NAME, JobService

router = APIRouter(prefix="/generate", tags=["jobs"])


def get_jobs(request: Request) -> JobService:
    service: JobService = request.app.state.jobs
    return service


JobsDep = Annotated[JobService, Depends(get_jobs)]


def owner(user: CurrentUser) -> Owner:
    return Owner(id=str(user.id), is_admin=bool(user.is_admin))


class UploadAnswer(BaseModel):
    #: What a job's ``prompt_file`` takes.
    key: str
    #: The file's name in storage: what ``DELETE .../batch/uploads/{name}`` takes.
    name: str


#: Characters of an upload's file name (its key keeps at most ``MAX_UPLOAD_KEY_NAME`` of the
#: name, escaped: ``services.jobs.upload_name``).
MAX_UPLOAD_NAME = 200


def linked(request: Request, view: JobView) -> JobView:
    """``view`` with its result's download link: the presigned URL storage gave, else this
    API's results route (the service knows no routes)."""
    if view.result is None or view.result.url is not None:
        return view
    # A path, not an absolute URL: behind API Gateway the Host is the origin's, not the client's.
    url = str(request.app.url_path_for("job_results", job_id=view.id))
    return view.model_copy(update={"result": view.result.model_copy(update={"url": url})})


@router.post("/batch", status_code=status.HTTP_202_ACCEPTED, response_model=JobView)
def submit_batch(
    spec: JobSpec,
    request: Request,
    user: CurrentUser,
    jobs: JobsDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> JobView:
    """Store and enqueue a batch job (a template + count, prompts, or an uploaded file)."""
    return linked(request, jobs.submit(owner(user), spec, idempotency_key=idempotency_key))


@router.get("/batch", response_model=list[JobView])
def list_batches(
    request: Request, user: CurrentUser, jobs: JobsDep, limit: int = 50
) -> list[JobView]:
    """Your latest jobs (an admin's: everyone's)."""
    return [linked(request, view) for view in jobs.list(owner(user), max(1, min(limit, 500)))]


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The prompt file: JSONL (one object with `prompt` per line) or CSV "
        "(a `prompt` column); the file name's extension says which.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.put(
    # Not ``{name:path}``: the request metrics' route label would take a name's segments.
    "/batch/uploads/{name}",
    response_model=UploadAnswer,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
)
async def upload_prompts(
    name: Annotated[str, Path(min_length=1, max_length=MAX_UPLOAD_NAME)],
    request: Request,
    user: CurrentUser,
    jobs: JobsDep,
) -> UploadAnswer:
    """Upload a JSONL/CSV prompt file (the raw body); use the answer's key as ``prompt_file``.
    ``name`` is the file's name (percent-encoded; no ``/``): its extension says the format; the
    same file under the same name gets the same key."""
    data = await request.body()
    key = await run_in_threadpool(jobs.upload_prompts, owner(user), name, data)
    return UploadAnswer(key=key, name=key.rsplit("/", 1)[-1])


@router.get("/batch/uploads", response_model=UploadList)
def list_uploads(user: CurrentUser, jobs: JobsDep) -> UploadList:
    """Your prompt files, and how much of your upload quota they (and /v1/files) take."""
    return jobs.uploads(owner(user))


@router.delete("/batch/uploads/{name}", status_code=204, response_class=Response)
def delete_upload(
    # A stored name: the 16-character digest, '-', then at most MAX_UPLOAD_KEY_NAME characters.
    name: Annotated[str, Path(min_length=1, max_length=17 + MAX_UPLOAD_KEY_NAME)],
    user: CurrentUser,
    jobs: JobsDep,
) -> Response:
    """Delete a prompt file (``name`` as the upload or the list answered); 409 while a job of
    yours that reads it has not finished."""
    jobs.delete_upload(owner(user), name)
    return Response(status_code=204)


@router.get("/status/{job_id}", response_model=JobView)
def job_status(job_id: str, request: Request, user: CurrentUser, jobs: JobsDep) -> JobView:
    """State, progress (done/total), timings, error and result link."""
    return linked(request, jobs.status(owner(user), job_id))


@router.post("/status/{job_id}/cancel", response_model=JobView)
def cancel_job(job_id: str, request: Request, user: CurrentUser, jobs: JobsDep) -> JobView:
    """Cancel a queued or running job."""
    return linked(request, jobs.cancel(owner(user), job_id))


@router.delete(
    "/status/{job_id}",
    response_model=JobView,
    responses={
        200: {"description": "The job was queued or running: it is cancelled (as by `cancel`)"},
        204: {"description": "The job had ended: it is deleted, with its records and files"},
    },
)
def delete_job(
    job_id: str, request: Request, user: CurrentUser, jobs: JobsDep
) -> JobView | Response:
    """Delete an ended job with its records, result files and validation report (its prompt
    upload stays); a queued or running job is cancelled instead (as ``POST .../cancel``)."""
    view = jobs.cancel_or_delete(owner(user), job_id)
    if view is None:
        return Response(status_code=204)
    return linked(request, view)


@router.get(
    "/status/{job_id}/results",
    response_class=Response,
    responses={200: {"description": "The result file"}, 307: {"description": "Presigned URL"}},
)
def job_results(job_id: str, user: CurrentUser, jobs: JobsDep) -> Response:
    """The result file: streamed from local storage, or a redirect to a presigned S3 URL.
    An ended job's: a failed or cancelled one keeps the records it made (409 when none)."""
    return result_response(jobs, jobs.results(owner(user), job_id), job_id)
