"""OpenAI-compatible servers through the ``openai`` SDK: vLLM (the engine of the GPU
Generation Service), OpenAI itself, llama-cpp-python's server, and any compatible endpoint.

Catalogue entry::

    - id: llama-3-8b-vllm
      backend: openai
      endpoint: http://generation.internal:8000/v1   # base URL, up to /v1
      context_length: 8192
      options:
        model: meta-llama/Meta-Llama-3-8B-Instruct   # served model name (default: the id)
        flavour: vllm          # vllm extras (ignore_eos, guided_json, best_of); or openai/generic
        api: chat              # chat (default for chat models) or completions
        api_key_secret: models/openai-api-key        # a secret name; omit for open servers
        stream_usage: true     # ask for usage on the last stream chunk (stream_options)

``complete_with(request, VllmExtras(guided_json=schema))`` sends vLLM's extras for one call.
The SDK's own retries are off: ``resilience`` retries.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import cached_property
from typing import Any

from textnlp.backends.base import installed
from textnlp.backends.cloud import CloudBackend, CloudContext
from textnlp.backends.options import OpenAIOptions
from textnlp.backends.providers import openai as openai_body
from textnlp.backends.providers.common import Chunk, Parsed
from textnlp.backends.providers.http_errors import event_error, told
from textnlp.backends.providers.openai import VllmExtras
from textnlp.backends.sdk_errors import map_sdk_error
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest
from textnlp.errors import BackendUnavailable, ConfigError

#: The key sent to servers that need none (the SDK insists on one).
NO_KEY = "not-needed"


class OpenAICompatBackend(CloudBackend):
    name = "openai"

    @cached_property
    def options(self) -> OpenAIOptions:
        """The catalogue entry's options (checked when the catalogue was read)."""
        return OpenAIOptions.of(self.spec)

    def __init__(
        self, spec: ModelSpec, *, context: CloudContext | None = None, http_client: Any = None
    ) -> None:
        super().__init__(spec, context=context)
        self._http_client = http_client  # an httpx2.AsyncClient (tests pass a MockTransport)
        self._client: Any = None

    @classmethod
    def key_secret(cls, spec: ModelSpec) -> str | None:
        return OpenAIOptions.of(spec).api_key_secret

    @classmethod
    def availability(cls, spec: ModelSpec) -> tuple[bool, str]:
        if not installed("openai"):
            return False, "the openai SDK is not installed (pip install 'textnlp[aws]')"
        return True, ""

    @property
    def served_model(self) -> str:
        return self.options.model or self.spec.id

    @property
    def chat_api(self) -> bool:
        default = "chat" if self.spec.chat else "completions"
        return (self.options.api or default) == "chat"

    @property
    def vllm(self) -> bool:
        return self.options.flavour == "vllm"

    async def _open(self, context: CloudContext) -> None:
        import asyncio

        import openai

        secret_name = self.options.api_key_secret
        api_key = NO_KEY
        if secret_name:
            secret = await asyncio.to_thread(context.secrets.get, secret_name)
            api_key = secret.get_secret_value()
        if not self.spec.endpoint and not secret_name:
            raise ConfigError(f"model {self.spec.id}: an openai entry needs 'endpoint:' or a key")
        timeout = self.options.timeout_s or context.timeout_s
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=self.spec.endpoint or None,
            max_retries=0,
            timeout=openai.Timeout(timeout, connect=context.connect_timeout_s),
            http_client=self._http_client,
        )

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _bodies(
        self, request: GenerationRequest, extras: VllmExtras | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.chat_api:
            body = openai_body.chat_body(self.served_model, request)
        else:
            body = openai_body.completion_body(self.served_model, request)
        return body, openai_body.extra_body(request, vllm=self.vllm, extras=extras)

    def _endpoint(self) -> Any:
        return self._client.chat.completions if self.chat_api else self._client.completions

    async def _call(self, request: GenerationRequest, extras: VllmExtras | None) -> Parsed:
        import openai

        body, extra = self._bodies(request, extras)
        try:
            answer = await self._endpoint().create(**body, extra_body=extra or None)
        except openai.APIError as exc:
            raise map_sdk_error(exc, backend=self.name, model=self.spec.id) from exc
        try:
            return openai_body.parse_response(answer.model_dump())
        except ValueError as exc:  # a 200 of another shape: the server is wrong, not the text
            raise BackendUnavailable(
                f"the server answered an unexpected body: {exc}",
                backend=self.name,
                model=self.spec.id,
            ) from exc

    async def _invoke(self, request: GenerationRequest) -> Parsed:
        return await self._call(request, None)

    async def complete_with(self, request: GenerationRequest, extras: VllmExtras) -> Completion:
        """One completion with vLLM's extras (``guided_json``, ``best_of``, ``min_tokens``)."""
        if not self.vllm:
            raise ConfigError(f"model {self.spec.id}: vLLM extras need options.flavour: vllm")
        return await self._complete_with(request, lambda: self._call(request, extras))

    async def _chunks(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        import openai

        body, extra = self._bodies(request, None)
        if self.options.stream_usage:
            body["stream_options"] = {"include_usage": True}
        try:
            stream = await self._endpoint().create(**body, stream=True, extra_body=extra or None)
            async with stream:
                async for event in stream:
                    data = event.model_dump()
                    # vLLM's older error event (``{"object": "error", ...}``) is no chunk the
                    # SDK knows: without this it ended the answer as if complete.
                    if (error := event_error(data)) is not None:
                        cls, message = error
                        text = told(cls, message, "an error")
                        where = {"backend": self.name, "model": self.spec.id}
                        raise cls(f"the server's stream: {text}", **where)
                    if (chunk := openai_body.parse_chunk(data)) is not None:
                        yield chunk
        except openai.APIError as exc:
            raise map_sdk_error(exc, backend=self.name, model=self.spec.id) from exc
