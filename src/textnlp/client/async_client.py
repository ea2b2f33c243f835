"""``AsyncTextNLPClient``: the API over ``httpx.AsyncClient`` (mirrors ``TextNLPClient``)."""

from __future__ import annotations

import asyncio
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
    TokenState,
    field,
    generate_body,
    handshake_error,
    invoke_body,
    job_path,
    key_path,
    model_path,
    origin_of,
    parsed,
    parsed_json,
    raise_for_error,
    reaching,
    retry_wait,
    sse_chunk,
    stored_file_location,
    stream_cut,
    stream_event,
    stream_message,
    stream_url,
    upload_path,
)
from textnlp.domain import ModelInfo
from textnlp.errors import ApiError


class AsyncTextNLPClient:
    """``max_retries``: how many more times a request the API refused for now (429, 503) is
    sent, after its ``Retry-After`` (at most ``MAX_RETRY_WAIT_S``)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
        self.tokens = TokenState(api_key=api_key)
        self.max_retries = max_retries
        self._refreshing = asyncio.Lock()  # one refresh at a time (a rotated token is spent)

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
        refreshed, attempt = False, 0
        while True:
            sent = await self._credential(auth)
            with reaching(self._http.base_url):
                response = await self._http.request(
                    method, API + path, headers={**self._headers(auth), **(headers or {})}, **kwargs
                )
            if response.status_code == 401 and auth and not refreshed and self.tokens.can_refresh():
                await self._refresh_after(sent)
                refreshed = True
                continue
            wait = retry_wait(response, attempt) if attempt < self.max_retries else None
            if wait is None:
                raise_for_error(response)
                return response
            await asyncio.sleep(wait)
            attempt += 1

    def _headers(self, auth: bool) -> dict[str, str]:
        return self.tokens.headers() if auth else {}

    async def _credential(self, auth: bool) -> str | None:
        """The access token a request is about to send, refreshed first when it is due."""
        if auth and self.tokens.should_refresh():
            await self._refresh_after(self.tokens.access_token)
        return self.tokens.access_token

    async def _refresh_after(self, sent: str | None) -> None:
        """Refresh the access token ``sent`` was, unless another task did meanwhile (three
        requests refused at once: one refresh, not two with a spent token)."""
        async with self._refreshing:
            if self.tokens.access_token == sent:
                await self.refresh()

    async def _open_again(self, response: httpx.Response, attempt: int, sent: str | None) -> bool:
        """Whether a stream's answer asks to open it again (its token was refused, and is now
        refreshed); raises the answer's error when it is one."""
        if response.status_code < 400:
            return False
        await response.aread()
        if response.status_code == 401 and not attempt and self.tokens.can_refresh():
            await self._refresh_after(sent)
            return True
        raise_for_error(response)
        return False

    # Auth ------------------------------------------------------------------------------------
    async def login(self, username: str, password: str) -> TokenResponse:
        response = await self.request(
            "POST", "/auth/login", auth=False, json={"username": username, "password": password}
        )
        tokens = parsed(response, TokenResponse)
        self.tokens.update(tokens)
        return tokens

    async def refresh(self) -> TokenResponse:
        refresh_token = self.tokens.refresh_token
        if refresh_token is None:
            raise ApiError(401, {"type": "authentication_error", "message": "not logged in"})
        with reaching(self._http.base_url):  # unreached: the token is not spent
            response = await self._http.post(
                API + "/auth/refresh", json={"refresh_token": refresh_token}
            )
        if 400 <= response.status_code < 500:
            self.tokens.refresh_token = None  # refused: spent, revoked or expired
        raise_for_error(response)
        tokens = parsed(response, TokenResponse)
        self.tokens.update(tokens)
        return tokens

    async def logout(self) -> None:
        await self.request("POST", "/auth/logout")
        self.tokens.clear()

    async def create_api_key(self, name: str) -> ApiKeyCreated:
        answer = await self.request("POST", "/auth/api-keys", json={"name": name})
        return parsed(answer, ApiKeyCreated)

    async def list_api_keys(self) -> ApiKeyList:
        return parsed(await self.request("GET", "/auth/api-keys"), ApiKeyList)

    async def revoke_api_key(self, key_id: str) -> None:
        await self.request("DELETE", key_path(key_id))

    # Generation ------------------------------------------------------------------------------
    async def generate(self, **fields: Any) -> CompletionResponse:
        """``POST generate/text``: ``prompt=`` or ``template=`` + ``variables=``, parameters."""
        body = generate_body(fields, stream=False)
        return parsed(await self.request("POST", "/generate/text", json=body), CompletionResponse)

    async def stream_chunks(self, **fields: Any) -> AsyncIterator[dict[str, Any]]:
        """``POST generate/text`` with ``stream: true``: each SSE chunk as a dict."""
        body = generate_body(fields, stream=True)
        for attempt in range(2):  # a second time after a refresh
            sent = await self._credential(True)
            with reaching(self._http.base_url):
                async with aconnect_sse(
                    self._http,
                    "POST",
                    API + "/generate/text",
                    json=body,
                    headers=self._headers(True),
                ) as source:
                    if await self._open_again(source.response, attempt, sent):
                        continue
                    async for event in source.aiter_sse():
                        chunk = sse_chunk(event)
                        if chunk is None:
                            return
                        yield chunk
                    return

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
        from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

        message = stream_message(generate_body(fields, stream=None))
        url = stream_url(self._http.base_url)
        for attempt in range(2):  # a second time after a refresh
            sent = await self._credential(True)
            try:
                with reaching(self._http.base_url, (OSError, InvalidURI)):
                    socket = await connect(url, additional_headers=self._headers(True))
            except InvalidStatus as refused:
                status = refused.response.status_code
                if status == 401 and not attempt and self.tokens.can_refresh():
                    await self._refresh_after(sent)
                    continue
                raise handshake_error(refused) from None
            async with socket:
                try:
                    await socket.send(message)
                    while True:  # each message within the client's read timeout, as SSE's
                        async with asyncio.timeout(self._http.timeout.read):
                            raw = await socket.recv()
                        event = stream_event(raw)
                        yield event
                        if event.get("type") == "done":
                            return
                except (ConnectionClosed, TimeoutError) as closed:
                    raise stream_cut(self._http.base_url, closed) from None
            return

    # Batch jobs ------------------------------------------------------------------------------
    async def upload_prompts(self, name: str, data: bytes) -> str:
        """Store a prompt file (JSONL/CSV) for a job's ``prompt_file``; its storage key."""
        answer = await self.request("PUT", upload_path(name), content=data)
        return str(field(parsed_json(answer), "key", answer))

    async def list_uploads(self) -> dict[str, Any]:
        """Your prompt files (``uploads``: each one's name, key and bytes) and how much of the
        upload quota they take (``used_bytes`` of ``quota_bytes``)."""
        answer = await self.request("GET", "/generate/batch/uploads")
        result: dict[str, Any] = parsed_json(answer)
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
        result: dict[str, Any] = parsed_json(answer)
        return result

    async def job_status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = parsed_json(await self.request("GET", job_path(job_id)))
        return result

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        answer = await self.request("POST", job_path(job_id, "/cancel"))
        result: dict[str, Any] = parsed_json(answer)
        return result

    async def delete_job(self, job_id: str) -> dict[str, Any] | None:
        """Delete an ended job with its records and files: None. A queued or running job is
        cancelled instead, as by ``cancel_job``, and comes back (the route's old meaning)."""
        answer = await self.request("DELETE", job_path(job_id))
        if answer.status_code == 204:
            return None
        result: dict[str, Any] = parsed_json(answer)
        return result

    async def list_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Your latest ``limit`` jobs, newest first (an admin's: everyone's; the API answers
        at most 500)."""
        answer = await self.request("GET", "/generate/batch", params={"limit": limit})
        result: list[dict[str, Any]] = parsed_json(answer)
        return result

    async def download_results(self, job_id: str, sink: IO[bytes]) -> int:
        """A finished job's result file, streamed into ``sink``; the bytes written."""
        path = API + job_path(job_id, "/results")
        written = 0
        for attempt in range(2):  # a second time after a refresh
            sent = await self._credential(True)
            with reaching(self._http.base_url):
                async with self._http.stream("GET", path, headers=self._headers(True)) as response:
                    if await self._open_again(response, attempt, sent):
                        continue
                    if response.is_redirect:  # S3 storage: a presigned URL
                        return await self._download_stored(stored_file_location(response), sink)
                    async for chunk in response.aiter_bytes():
                        written += sink.write(chunk)
                    break
        return written

    async def _download_stored(self, url: str, sink: IO[bytes]) -> int:
        """A stored file's bytes from its presigned URL: no credential of the API's is sent."""
        written = 0
        with reaching(origin_of(url)):
            async with self._http.stream("GET", url, headers={}) as response:
                if response.status_code >= 300:
                    await response.aread()
                    raise_for_error(response)
                async for chunk in response.aiter_bytes():
                    written += sink.write(chunk)
        return written

    # Validation ------------------------------------------------------------------------------
    async def quality(self, texts: list[str], **options: Any) -> QualityResponse:
        body = {"texts": texts, **options}
        return parsed(await self.request("POST", "/validate/quality", json=body), QualityResponse)

    async def similarity(
        self, candidates: list[str], references: list[str], **options: Any
    ) -> SimilarityResponse:
        body = {"candidates": candidates, "references": references, **options}
        answer = await self.request("POST", "/validate/similarity", json=body)
        return parsed(answer, SimilarityResponse)

    async def validation_metrics(self) -> ValidationMetrics:
        return parsed(await self.request("GET", "/validate/metrics"), ValidationMetrics)

    # Models ----------------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        return parsed(await self.request("GET", "/models/list"), ModelList).data

    async def get_model(self, model_id: str) -> ModelInfo:
        return parsed(await self.request("GET", model_path(model_id)), ModelInfo)

    async def invoke(self, model_id: str, **fields: Any) -> CompletionResponse:
        body = invoke_body(fields)
        answer = await self.request("POST", model_path(model_id, "/invoke"), json=body)
        return parsed(answer, CompletionResponse)

    # Admin -----------------------------------------------------------------------------------
    async def health(self) -> HealthResponse:
        with reaching(self._http.base_url):
            response = await self._http.get(API + "/admin/health")
        if response.status_code not in (200, 503):
            raise_for_error(response)
        try:
            return parsed(response, HealthResponse)
        except ApiError:
            raise_for_error(response)  # a 503 page of a proxy: the 503 itself
            raise

    async def metrics(self) -> str:
        return (await self.request("GET", "/admin/metrics")).text

    async def clear_cache(self) -> int:
        answer = await self.request("POST", "/admin/cache/clear")
        return int(field(parsed_json(answer), "cleared", answer))
