"""Where ``textnlp jobs`` sends its commands: the REST API, or the local service directly.

An API that cannot be reached, or answers 503, is ``ServiceUnavailable`` naming the URL given;
a URL that is no http(s) URL is bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    TextNLPError,
)
from textnlp.generation.writers import atomic_file
from textnlp.services.job_models import JobSpec
from textnlp.services.jobs import Owner

LOCAL_OWNER = Owner(id="local", is_admin=True)
BASE = "/api/v1/generate"


class JobsBackend(Protocol):
    def upload(self, name: str, data: bytes) -> str: ...
    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]: ...
    def status(self, job_id: str) -> dict[str, Any]: ...
    def cancel(self, job_id: str) -> dict[str, Any]: ...
    def list(self) -> list[dict[str, Any]]: ...
    def download(self, job_id: str, out: Path) -> int: ...
    def close(self) -> None: ...


class LocalJobs:
    def __init__(self, settings: Settings) -> None:
        self.platform = Platform(settings)
        self.service = self.platform.jobs

    def upload(self, name: str, data: bytes) -> str:
        return self.service.upload_prompts(LOCAL_OWNER, name, data)

    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        try:
            spec = JobSpec.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "job"
            raise InvalidInput(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
        view = self.service.submit(LOCAL_OWNER, spec, idempotency_key=idempotency_key)
        return view.model_dump(mode="json")

    def status(self, job_id: str) -> dict[str, Any]:
        return self.service.status(LOCAL_OWNER, job_id).model_dump(mode="json")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.service.cancel(LOCAL_OWNER, job_id).model_dump(mode="json")

    def list(self) -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in self.service.list(LOCAL_OWNER)]

    def download(self, job_id: str, out: Path) -> int:
        result = self.service.results(LOCAL_OWNER, job_id)
        self.service.storage.download(result.key, out)
        return out.stat().st_size

    def close(self) -> None:
        self.platform.close()


class ApiJobs:
    def __init__(self, base_url: str, token: str | None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise InvalidInput(
                f"--api must be an http(s) URL such as http://127.0.0.1:8000 (got {base_url!r})"
            )
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0)

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Transport failures (refused, timed out, TLS, DNS) as one ``ServiceUnavailable``."""
        try:
            yield
        except httpx.TransportError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ServiceUnavailable(
                f"cannot reach the API at {self.base_url}: {reason}", dependency="api"
            ) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._reaching():
            return self._check(self.client.request(method, path, **kwargs))

    def _check(self, answer: httpx.Response) -> httpx.Response:
        if answer.status_code < 400:
            return answer
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text[:200] or answer.reason_phrase
        error: type[TextNLPError] = {
            401: AuthError,
            404: NotFound,
            409: Conflict,
            503: ServiceUnavailable,
        }.get(answer.status_code, InvalidInput if answer.status_code < 500 else TextNLPError)
        raise error(f"API answered {answer.status_code}: {message}")

    def upload(self, name: str, data: bytes) -> str:
        answer = self._send("PUT", f"{BASE}/batch/uploads/{name}", content=data)
        return str(answer.json()["key"])

    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return dict(self._send("POST", f"{BASE}/batch", json=body, headers=headers).json())

    def status(self, job_id: str) -> dict[str, Any]:
        return dict(self._send("GET", f"{BASE}/status/{job_id}").json())

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self._send("POST", f"{BASE}/status/{job_id}/cancel").json())

    def list(self) -> list[dict[str, Any]]:
        return list(self._send("GET", f"{BASE}/batch").json())

    def download(self, job_id: str, out: Path) -> int:
        """The result file, written to ``out`` atomically (an old file stays if this fails)."""
        with (
            self._reaching(),
            self.client.stream("GET", f"{BASE}/status/{job_id}/results") as answer,
        ):
            if answer.status_code >= 400:
                answer.read()
                self._check(answer)
            with atomic_file(out, "wb") as handle:
                for chunk in answer.iter_bytes():
                    handle.write(chunk)
        return out.stat().st_size

    def close(self) -> None:
        self.client.close()
