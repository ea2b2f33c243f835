"""Where ``textnlp jobs`` sends its commands: the REST API, or the local service directly.

An API that cannot be reached, or answers 503, is ``ServiceUnavailable`` naming the URL given;
a URL that is no http(s) URL is bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import ValidationError

from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.errors import (
    Conflict,
    InvalidInput,
    ServiceUnavailable,
    first_error,
)
from textnlp.generation.writers import atomic_file
from textnlp.services.job_models import JobSpec, Owner

if TYPE_CHECKING:  # the client (httpx) loads with --api only: `textnlp --help` stays light
    from textnlp.client import TextNLPClient

LOCAL_OWNER = Owner(id="local", is_admin=True)


class JobsBackend(Protocol):
    def upload(self, name: str, data: bytes) -> str: ...
    def uploads(self) -> dict[str, Any]: ...
    def delete_upload(self, name: str) -> None: ...
    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]: ...
    def status(self, job_id: str) -> dict[str, Any]: ...
    def cancel(self, job_id: str) -> dict[str, Any]: ...
    def delete(self, job_id: str) -> None: ...
    def list(self) -> list[dict[str, Any]]: ...
    def download(self, job_id: str, out: Path) -> int: ...
    def close(self) -> None: ...


class LocalJobs:
    def __init__(self, settings: Settings) -> None:
        self.platform = Platform(settings)
        self.service = self.platform.jobs

    def upload(self, name: str, data: bytes) -> str:
        return self.service.upload_prompts(LOCAL_OWNER, name, data)

    def uploads(self) -> dict[str, Any]:
        return self.service.uploads(LOCAL_OWNER).model_dump(mode="json")

    def delete_upload(self, name: str) -> None:
        self.service.delete_upload(LOCAL_OWNER, name)

    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        try:
            spec = JobSpec.model_validate(body)
        except ValidationError as exc:
            raise InvalidInput(first_error(exc, root="job")) from None
        view = self.service.submit(LOCAL_OWNER, spec, idempotency_key=idempotency_key)
        return view.model_dump(mode="json")

    def status(self, job_id: str) -> dict[str, Any]:
        return self.service.status(LOCAL_OWNER, job_id).model_dump(mode="json")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.service.cancel(LOCAL_OWNER, job_id).model_dump(mode="json")

    def delete(self, job_id: str) -> None:
        self.service.delete(LOCAL_OWNER, job_id)  # an active job: Conflict, nothing deleted

    def list(self) -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in self.service.list(LOCAL_OWNER)]

    def download(self, job_id: str, out: Path) -> int:
        """The result file, written to ``out`` atomically (an old file stays if this fails)."""
        result = self.service.results(LOCAL_OWNER, job_id)
        with atomic_file(out, "wb") as handle:
            for chunk in self.service.result_chunks(result):
                handle.write(chunk)
        return out.stat().st_size

    def close(self) -> None:
        self.platform.close()


def too_large(name: str, size: int, limit: Any) -> str:
    """The API's 413 to an upload, said of the prompt file: its body bound is the server's
    ``api.max_body_bytes`` (the local path is not bound by it)."""
    bound = f"{limit} bytes" if isinstance(limit, int) else "its limit"
    return (
        f"prompt file {name} ({size} bytes) is larger than the API takes in one request "
        f"({bound}: the server's TEXTNLP_API__MAX_BODY_BYTES); split it into smaller files"
    )


class ApiJobs:
    """The commands against the REST API, through the library's client (``textnlp.client``):
    its error answers are ``ApiError``s; an API that cannot be reached, or answers 503, is
    ``ServiceUnavailable``."""

    def __init__(self, base_url: str, token: str | None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise InvalidInput(
                f"--api must be an http(s) URL such as http://127.0.0.1:8000 (got {base_url!r})"
            )
        if not token:  # the server would say "send 'Authorization: Bearer <token>'"
            raise InvalidInput("--api needs --token (or TEXTNLP_API_TOKEN): an API key or token")
        from textnlp.client import TextNLPClient

        self.base_url = base_url.rstrip("/")
        self.client: TextNLPClient = TextNLPClient(self.base_url, api_key=token, timeout=60.0)

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        from textnlp.client import ApiError, ApiUnreachable

        try:
            yield
        except ApiUnreachable as exc:  # "cannot reach the API at ...: ..."
            raise ServiceUnavailable(exc.message, dependency="api") from None
        except ApiError as exc:
            if exc.status != 503:
                raise
            message = f"the API is unavailable: {exc.message}"
            raise ServiceUnavailable(message, dependency="api") from None

    def upload(self, name: str, data: bytes) -> str:
        from textnlp.client import ApiError

        try:
            with self._reaching():
                return self.client.upload_prompts(name, data)
        except ApiError as exc:
            if exc.status != 413:
                raise
            raise InvalidInput(too_large(name, len(data), exc.details.get("limit"))) from None

    def uploads(self) -> dict[str, Any]:
        with self._reaching():
            return self.client.list_uploads()

    def delete_upload(self, name: str) -> None:
        with self._reaching():
            self.client.delete_upload(name)

    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        with self._reaching():
            return self.client.submit_batch(body, idempotency_key=idempotency_key)

    def status(self, job_id: str) -> dict[str, Any]:
        with self._reaching():
            return self.client.job_status(job_id)

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._reaching():
            return self.client.cancel_job(job_id)

    def delete(self, job_id: str) -> None:
        """Delete an ended job (the caller saw it ended: a state it never leaves). The route
        cancels an active job instead; were it one, that is said, not passed over."""
        with self._reaching():
            cancelled = self.client.delete_job(job_id)
        if cancelled is not None:
            raise Conflict(f"job {job_id} was {cancelled['state']}: it is cancelled, not deleted")

    def list(self) -> list[dict[str, Any]]:
        with self._reaching():
            return self.client.list_jobs()

    def download(self, job_id: str, out: Path) -> int:
        """The result file, written to ``out`` atomically (an old file stays if this fails)."""
        with self._reaching(), atomic_file(out, "wb") as handle:
            self.client.download_results(job_id, handle)
        return out.stat().st_size

    def close(self) -> None:
        self.client.close()
