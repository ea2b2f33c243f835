"""A job's result file as an HTTP answer: the API's results route and the console's download
link answer alike (streamed from local storage, or a redirect to a presigned S3 URL)."""

from __future__ import annotations

from fastapi import status
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from textnlp.services.jobs import JobService, ResultDownload

MEDIA_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}


def result_response(jobs: JobService, result: ResultDownload, job_id: str) -> Response:
    if result.url is not None:
        return RedirectResponse(result.url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    return StreamingResponse(
        jobs.result_chunks(result),
        media_type=MEDIA_TYPES.get(result.format, "application/octet-stream"),
        headers={
            "Content-Disposition": f'attachment; filename="{job_id}.{result.format}"',
            "Content-Length": str(result.size),
        },
    )
