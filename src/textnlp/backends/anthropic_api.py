"""Anthropic's own Messages API through the ``anthropic`` SDK.

Catalogue entry::

    - id: claude-sonnet
      backend: anthropic
      endpoint: claude-sonnet-4-5          # the Anthropic model name
      context_length: 200000
      options: {api_key_secret: models/anthropic-api-key}   # the default; api_base optional

Recent Claude models take ``temperature`` or ``top_p``, not both: ``top_p`` is sent only with
``options: {send_top_p: true}``.

The body is the Messages API body also used on Bedrock (``providers.bedrock_anthropic``),
without ``anthropic_version`` and with ``model``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from functools import cached_property
from typing import Any

from textnlp.backends.base import installed
from textnlp.backends.cloud import CloudBackend, CloudContext
from textnlp.backends.options import AnthropicOptions
from textnlp.backends.providers import bedrock_anthropic
from textnlp.backends.providers.common import Chunk, Parsed
from textnlp.backends.sdk_errors import map_sdk_error
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationRequest

SAMPLING_FIELDS = ("temperature", "top_p")


class AnthropicBackend(CloudBackend):
    name = "anthropic"

    @cached_property
    def options(self) -> AnthropicOptions:
        """The catalogue entry's options (checked when the catalogue was read)."""
        return AnthropicOptions.of(self.spec)

    def __init__(
        self, spec: ModelSpec, *, context: CloudContext | None = None, http_client: Any = None
    ) -> None:
        super().__init__(spec, context=context)
        self._http_client = http_client
        self._client: Any = None

    @classmethod
    def key_secret(cls, spec: ModelSpec) -> str | None:
        return AnthropicOptions.of(spec).api_key_secret

    @classmethod
    def availability(cls, spec: ModelSpec) -> tuple[bool, str]:
        if not installed("anthropic"):
            return False, "the anthropic SDK is not installed (pip install 'textnlp[aws]')"
        return True, ""

    async def _open(self, context: CloudContext) -> None:
        import anthropic

        key = await asyncio.to_thread(context.secrets.get, self.options.api_key_secret)
        timeout = self.options.timeout_s or context.timeout_s
        self._client = anthropic.AsyncAnthropic(
            api_key=key.get_secret_value(),
            base_url=self.options.api_base,
            max_retries=0,
            timeout=anthropic.Timeout(timeout, connect=context.connect_timeout_s),
            http_client=self._http_client,
        )

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        body = bedrock_anthropic.messages_body(request, version=None, top_p=self.options.send_top_p)
        return {"model": self.spec.endpoint or self.spec.id, **body}

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        """Keyword arguments of ``messages.create``: sampling fields the SDK no longer names
        (temperature, top_p) travel in ``extra_body``, as the API still takes them."""
        body = self._body(request)
        extra = {k: body.pop(k) for k in SAMPLING_FIELDS if k in body}
        return {**body, "extra_body": extra or None}

    async def _invoke(self, request: GenerationRequest) -> Parsed:
        import anthropic

        try:
            answer = await self._client.messages.create(**self._arguments(request))
        except anthropic.APIError as exc:
            raise map_sdk_error(exc, backend=self.name, model=self.spec.id) from exc
        return bedrock_anthropic.parse_messages_response(answer.model_dump())

    async def _chunks(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        import anthropic

        try:
            stream = await self._client.messages.create(**self._arguments(request), stream=True)
            async with stream:
                async for event in stream:
                    chunk = bedrock_anthropic.parse_messages_event(event.model_dump())
                    if chunk is not None:
                        yield chunk
        except anthropic.APIError as exc:
            raise map_sdk_error(exc, backend=self.name, model=self.spec.id) from exc
