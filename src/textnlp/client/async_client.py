"""``AsyncTextNLPClient``: the API over ``httpx.AsyncClient`` (mirrors ``TextNLPClient``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO, Any

import httpx
from httpx_sse import aconnect_sse

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


class AsyncTextNLPClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
        self.tokens = TokenState(api_key=api_key)

    async def __aenter__(self) -> AsyncTextNLPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # Plumbing --------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if auth and self.tokens.should_refresh():
            await self.refresh()
        response = await self._http.request(
            method, API + path, headers={**self._headers(auth), **(headers or {})}, **kwargs
        )
        if response.status_code == 401 and auth and self.tokens.can_refresh():
            await self.refresh()
            response = await self._http.request(
                method, API + path, headers={**self._headers(auth), **(headers or {})}, **kwargs
            )
        raise_for_error(response)
        return response

    def _headers(self, auth: bool) -> dict[str, str]:
        return self.tokens.headers() if auth else {}

    # Auth ------------------------------------------------------------------------------------
    async def login(self, username: str, password: str) -> TokenResponse:
        response = await self.request(
            "POST", "/auth/login", auth=False, json={"username": username, "password": password}
        )
        tokens = TokenResponse.model_validate(response.json())
        self.tokens.update(tokens)
        return tokens

    async def refresh(self) -> TokenResponse:
        if self.tokens.refresh_token is None:
            raise ApiError(401, {"type": "authentication_error", "message": "not logged in"})
        refresh_token, self.tokens.refresh_token = self.tokens.refresh_token, None
        response = await self._http.post(
            API + "/auth/refresh", json={"refresh_token": refresh_token}
        )
        raise_for_error(response)
        tokens = TokenResponse.model_validate(response.json())
        self.tokens.update(tokens)
        return tokens

    async def logout(self) -> None:
        (await self.request("POST", "/auth/logout"))
        self.tokens.clear()

    async def create_api_key(self, name: str) -> ApiKeyCreated:
        return ApiKeyCreated.model_validate(
            (await self.request("POST", "/auth/api-keys", json={"name": name})).json()
        )

    async def list_api_keys(self) -> ApiKeyList:
        return ApiKeyList.model_validate((await self.request("GET", "/auth/api-keys")).json())

    async def revoke_api_key(self, key_id: str) -> None:
        (await self.request("DELETE", f"/auth/api-keys/{key_id}"))

    # Generation ------------------------------------------------------------------------------
    async def generate(self, **fields: Any) -> CompletionResponse:
        """``POST generate/text``: ``prompt=`` or ``template=`` + ``variables=``, parameters."""
        body = generate_body(**fields, stream=False)
        return CompletionResponse.model_validate(
            (await self.request("POST", "/generate/text", json=body)).json()
        )

    async def stream_chunks(self, **fields: Any) -> AsyncIterator[dict[str, Any]]:
        """``POST generate/text`` with ``stream: true``: each SSE chunk as a dict."""
        body = generate_body(**fields, stream=True)
        if self.tokens.should_refresh():
            await self.refresh()
        async with aconnect_sse(
            self._http, "POST", API + "/generate/text", json=body, headers=self._headers(True)
        ) as source:
            if source.response.status_code >= 400:
                await source.response.aread()
                raise_for_error(source.response)
            async for event in source.aiter_sse():
                chunk = sse_chunk(event)
                if chunk is None:
                    return
                yield chunk

    async def stream(self, **fields: Any) -> AsyncIterator[str]:
        """The streamed text, piece by piece."""
        async for chunk in self.stream_chunks(**fields):
            text = chunk["choices"][0]["text"]
            if text:
                yield str(text)

    async def stream_events(self, **fields: Any) -> AsyncIterator[dict[str, Any]]:
        """The WebSocket ``generate/stream``: ``{"type": "token", "text"}`` events as they
        come, then ``{"type": "done", "finish_reason", "usage"}``. Errors raise ``ApiError``."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        message = stream_message(generate_body(**fields))
        if self.tokens.should_refresh():
            await self.refresh()
        url = stream_url(self._http.base_url)
        try:
            socket = await connect(url, additional_headers=self._headers(True))
        except InvalidStatus as refused:
            raise handshake_error(refused) from None
        async with socket:
            await socket.send(message)
            async for raw in socket:
                event = stream_event(raw)
                yield event
                if event.get("type") == "done":
                    return

    # Batch jobs ------------------------------------------------------------------------------
    async def upload_prompts(self, name: str, data: bytes) -> str:
        """Store a prompt file (JSONL/CSV) for a job's ``prompt_file``; its storage key."""
        answer = await self.request("PUT", upload_path(name), content=data)
        return str(answer.json()["key"])

    async def list_uploads(self) -> dict[str, Any]:
        """Your prompt files (``uploads``: each one's name, key and bytes) and how much of the
        upload quota they take (``used_bytes`` of ``quota_bytes``)."""
        answer = await self.request("GET", "/generate/batch/uploads")
        result: dict[str, Any] = answer.json()
        return result

    async def delete_upload(self, name: str) -> None:
        """Delete a prompt file, by the ``name`` ``list_uploads`` gives it."""
        await self.request("DELETE", upload_path(name))

    async def submit_batch(
        self, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Submit a job; the same ``idempotency_key`` again answers the same job."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        answer = await self.request("POST", "/generate/batch", json=body, headers=headers)
        result: dict[str, Any] = answer.json()
        return result

    async def job_status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = (await self.request("GET", job_path(job_id))).json()
        return result

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        answer = await self.request("POST", job_path(job_id, "/cancel"))
        result: dict[str, Any] = answer.json()
        return result

    async def list_jobs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self.request("GET", "/generate/batch")).json()
        return result

    async def download_results(self, job_id: str, sink: IO[bytes]) -> int:
        """A finished job's result file, streamed into ``sink``; the bytes written."""
        if self.tokens.should_refresh():
            await self.refresh()
        path = API + job_path(job_id, "/results")
        written = 0
        async with self._http.stream("GET", path, headers=self._headers(True)) as response:
            if response.status_code >= 400:
                await response.aread()
                raise_for_error(response)
            async for chunk in response.aiter_bytes():
                written += sink.write(chunk)
        return written

    # Validation ------------------------------------------------------------------------------
    async def quality(self, texts: list[str], **options: Any) -> QualityResponse:
        body = {"texts": texts, **options}
        return QualityResponse.model_validate(
            (await self.request("POST", "/validate/quality", json=body)).json()
        )

    async def similarity(
        self, candidates: list[str], references: list[str], **options: Any
    ) -> SimilarityResponse:
        body = {"candidates": candidates, "references": references, **options}
        return SimilarityResponse.model_validate(
            (await self.request("POST", "/validate/similarity", json=body)).json()
        )

    async def validation_metrics(self) -> ValidationMetrics:
        return ValidationMetrics.model_validate(
            (await self.request("GET", "/validate/metrics")).json()
        )

    # Models ----------------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        return ModelList.model_validate((await self.request("GET", "/models/list")).json()).data

    async def get_model(self, model_id: str) -> ModelInfo:
        return ModelInfo.model_validate((await self.request("GET", f"/models/{model_id}")).json())

    async def invoke(self, model_id: str, **fields: Any) -> CompletionResponse:
        body = invoke_body(**fields)
        return CompletionResponse.model_validate(
            (await self.request("POST", f"/models/{model_id}/invoke", json=body)).json()
        )

    # Admin -----------------------------------------------------------------------------------
    async def health(self) -> HealthResponse:
        response = await self._http.get(API + "/admin/health")
        if response.status_code not in (200, 503):
            raise_for_error(response)
        return HealthResponse.model_validate(response.json())

    async def metrics(self) -> str:
        return (await self.request("GET", "/admin/metrics")).text

    async def clear_cache(self) -> int:
        return int((await self.request("POST", "/admin/cache/clear")).json()["cleared"])
