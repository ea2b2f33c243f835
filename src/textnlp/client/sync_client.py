"""``TextNLPClient``: the API over a blocking ``httpx.Client``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import httpx
from httpx_sse import connect_sse

from textnlp.api.schemas import (
    ApiKeyCreated,
    ApiKeyList,
    CompletionResponse,
    HealthResponse,
    ModelList,
    QualityResponse,
    SimilarityResponse,
    TokenResponse,
    ValidationMetrics,
)
from textnlp.client.core import (
    API,
    ApiError,
    TokenState,
    generate_body,
    handshake_error,
    invoke_body,
    job_path,
    raise_for_error,
    sse_chunk,
    stream_event,
    stream_message,
    stream_url,
    upload_path,
)
from textnlp.domain import ModelInfo


class TextNLPClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self.tokens = TokenState(api_key=api_key)

    def __enter__(self) -> TextNLPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Plumbing --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if auth and self.tokens.should_refresh():
            self.refresh()
        response = self._http.request(
            method, API + path, headers={**self._headers(auth), **(headers or {})}, **kwargs
        )
        if response.status_code == 401 and auth and self.tokens.can_refresh():
            self.refresh()
            response = self._http.request(
                method, API + path, headers={**self._headers(auth), **(headers or {})}, **kwargs
            )
        raise_for_error(response)
        return response

    def _headers(self, auth: bool) -> dict[str, str]:
        return self.tokens.headers() if auth else {}

    # Auth ------------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> TokenResponse:
        response = self.request(
            "POST", "/auth/login", auth=False, json={"username": username, "password": password}
        )
        tokens = TokenResponse.model_validate(response.json())
        self.tokens.update(tokens)
        return tokens

    def refresh(self) -> TokenResponse:
        if self.tokens.refresh_token is None:
            raise ApiError(401, {"type": "authentication_error", "message": "not logged in"})
        refresh_token, self.tokens.refresh_token = self.tokens.refresh_token, None
        response = self._http.post(API + "/auth/refresh", json={"refresh_token": refresh_token})
        raise_for_error(response)
        tokens = TokenResponse.model_validate(response.json())
        self.tokens.update(tokens)
        return tokens

    def logout(self) -> None:
        self.request("POST", "/auth/logout")
        self.tokens.clear()

    def create_api_key(self, name: str) -> ApiKeyCreated:
        return ApiKeyCreated.model_validate(
            self.request("POST", "/auth/api-keys", json={"name": name}).json()
        )

    def list_api_keys(self) -> ApiKeyList:
        return ApiKeyList.model_validate(self.request("GET", "/auth/api-keys").json())

    def revoke_api_key(self, key_id: str) -> None:
        self.request("DELETE", f"/auth/api-keys/{key_id}")

    # Generation ------------------------------------------------------------------------------
    def generate(self, **fields: Any) -> CompletionResponse:
        """``POST generate/text``: ``prompt=`` or ``template=`` + ``variables=``, parameters."""
        body = generate_body(**fields, stream=False)
        return CompletionResponse.model_validate(
            self.request("POST", "/generate/text", json=body).json()
        )

    def stream_chunks(self, **fields: Any) -> Iterator[dict[str, Any]]:
        """``POST generate/text`` with ``stream: true``: each SSE chunk as a dict."""
        body = generate_body(**fields, stream=True)
        if self.tokens.should_refresh():
            self.refresh()
        with connect_sse(
            self._http, "POST", API + "/generate/text", json=body, headers=self._headers(True)
        ) as source:
            if source.response.status_code >= 400:
                source.response.read()
                raise_for_error(source.response)
            for event in source.iter_sse():
                chunk = sse_chunk(event)
                if chunk is None:
                    return
                yield chunk

    def stream(self, **fields: Any) -> Iterator[str]:
        """The streamed text, piece by piece."""
        for chunk in self.stream_chunks(**fields):
            text = chunk["choices"][0]["text"]
            if text:
                yield str(text)

    def stream_events(self, **fields: Any) -> Iterator[dict[str, Any]]:
        """The WebSocket ``generate/stream``: ``{"type": "token", "text"}`` events as they
        come, then ``{"type": "done", "finish_reason", "usage"}``. Errors raise ``ApiError``."""
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        message = stream_message(generate_body(**fields))
        if self.tokens.should_refresh():
            self.refresh()
        url = stream_url(self._http.base_url)
        try:
            socket = connect(url, additional_headers=self._headers(True))
        except InvalidStatus as refused:
            raise handshake_error(refused) from None
        with socket:
            socket.send(message)
            for raw in socket:
                event = stream_event(raw)
                yield event
                if event.get("type") == "done":
                    return

    # Batch jobs ------------------------------------------------------------------------------
    def upload_prompts(self, name: str, data: bytes) -> str:
        """Store a prompt file (JSONL/CSV) for a job's ``prompt_file``; its storage key."""
        answer = self.request("PUT", upload_path(name), content=data)
        return str(answer.json()["key"])

    def list_uploads(self) -> dict[str, Any]:
        """Your prompt files (``uploads``: each one's name, key and bytes) and how much of the
        upload quota they take (``used_bytes`` of ``quota_bytes``)."""
        result: dict[str, Any] = self.request("GET", "/generate/batch/uploads").json()
        return result

    def delete_upload(self, name: str) -> None:
        """Delete a prompt file, by the ``name`` ``list_uploads`` gives it."""
        self.request("DELETE", upload_path(name))

    def submit_batch(
        self, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Submit a job; the same ``idempotency_key`` again answers the same job."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self.request(
            "POST", "/generate/batch", json=body, headers=headers
        ).json()
        return result

    def job_status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", job_path(job_id)).json()
        return result

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", job_path(job_id, "/cancel")).json()
        return result

    def list_jobs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/generate/batch").json()
        return result

    def download_results(self, job_id: str, sink: IO[bytes]) -> int:
        """A finished job's result file, streamed into ``sink``; the bytes written."""
        if self.tokens.should_refresh():
            self.refresh()
        path = API + job_path(job_id, "/results")
        written = 0
        with self._http.stream("GET", path, headers=self._headers(True)) as response:
            if response.status_code >= 400:
                response.read()
                raise_for_error(response)
            for chunk in response.iter_bytes():
                written += sink.write(chunk)
        return written

    # Validation ------------------------------------------------------------------------------
    def quality(self, texts: list[str], **options: Any) -> QualityResponse:
        body = {"texts": texts, **options}
        return QualityResponse.model_validate(
            self.request("POST", "/validate/quality", json=body).json()
        )

    def similarity(
        self, candidates: list[str], references: list[str], **options: Any
    ) -> SimilarityResponse:
        body = {"candidates": candidates, "references": references, **options}
        return SimilarityResponse.model_validate(
            self.request("POST", "/validate/similarity", json=body).json()
        )

    def validation_metrics(self) -> ValidationMetrics:
        return ValidationMetrics.model_validate(self.request("GET", "/validate/metrics").json())

    # Models ----------------------------------------------------------------------------------
    def list_models(self) -> list[ModelInfo]:
        return ModelList.model_validate(self.request("GET", "/models/list").json()).data

    def get_model(self, model_id: str) -> ModelInfo:
        return ModelInfo.model_validate(self.request("GET", f"/models/{model_id}").json())

    def invoke(self, model_id: str, **fields: Any) -> CompletionResponse:
        body = invoke_body(**fields)
        return CompletionResponse.model_validate(
            self.request("POST", f"/models/{model_id}/invoke", json=body).json()
        )

    # Admin -----------------------------------------------------------------------------------
    def health(self) -> HealthResponse:
        response = self._http.get(API + "/admin/health")
        if response.status_code not in (200, 503):
            raise_for_error(response)
        return HealthResponse.model_validate(response.json())

    def metrics(self) -> str:
        return self.request("GET", "/admin/metrics").text

    def clear_cache(self) -> int:
        return int(self.request("POST", "/admin/cache/clear").json()["cleared"])
