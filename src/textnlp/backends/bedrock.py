"""AWS Bedrock (``bedrock-runtime``): Converse / ConverseStream where the model supports it,
InvokeModel / InvokeModelWithResponseStream with the provider's own body where it does not or
where the catalogue asks for it (``options: {api: invoke}``).

Catalogue entry::

    - id: claude-v2
      backend: bedrock
      endpoint: anthropic.claude-v2          # the Bedrock model id or inference profile
      provider: anthropic
      context_length: 100000
      defaults: {max_tokens: 4096, temperature: 0.7, top_p: 0.9}
      options: {region: us-east-1}           # api, system_prompts, streaming, anthropic_api,
                                             # additional_fields, timeout_s, max_connections

Which body and features a model id gets is decided in ``providers.bedrock_models``; the bodies
themselves live in ``providers.bedrock_*``. Token counts come from the answer (Converse
``usage``, provider fields, or Bedrock's token-count headers and invocation metrics).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from textnlp.backends.aws_common import AwsRuntimeBackend, call_in_thread, iterate_in_thread
from textnlp.backends.cloud import CloudContext
from textnlp.backends.options import BedrockOptions
from textnlp.backends.providers import bedrock_converse
from textnlp.backends.providers.bedrock_models import BedrockProfile, InvokeCodec, bedrock_profile
from textnlp.backends.providers.common import Chunk, Parsed
from textnlp.backends.providers.invocation_metrics import header_counts
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationRequest
from textnlp.errors import ConfigError


class BedrockBackend(AwsRuntimeBackend):
    name = "bedrock"
    service = "bedrock-runtime"
    options_model = BedrockOptions
    options: BedrockOptions  # narrowed: the property of AwsRuntimeBackend builds this type
    profile: BedrockProfile | None = None

    @classmethod
    def streams(cls, spec: ModelSpec) -> bool:
        # Some providers (AI21 Jurassic-2, Titan's InvokeModel body) answer in one piece.
        return bedrock_profile(spec.endpoint or spec.id, BedrockOptions.of(spec)).streaming

    @property
    def model_id(self) -> str:
        return self.spec.endpoint or self.spec.id

    async def _open(self, context: CloudContext) -> None:
        self.profile = bedrock_profile(self.model_id, self.options)
        if self.profile.api == "invoke" and self.profile.codec is None:
            raise ConfigError(
                f"no InvokeModel body for provider {self.profile.provider!r} of "
                f"{self.model_id}; use options: {{api: converse}}"
            )
        await super()._open(context)

    def _profile(self) -> BedrockProfile:
        if self.profile is None:
            raise self._not_loaded()
        return self.profile

    def _converse_body(self, request: GenerationRequest) -> dict[str, Any]:
        profile = self._profile()
        body = bedrock_converse.request_body(
            self.model_id, request, system_prompts=profile.system_prompts, top_p=profile.top_p
        )
        if extra := self.options.additional_fields:
            body["additionalModelRequestFields"] = extra
        return body

    def _invoke_args(self, request: GenerationRequest) -> tuple[InvokeCodec, dict[str, Any]]:
        codec = self._profile().codec
        assert codec is not None  # checked in _open
        body = codec.body(self.model_id, request)
        body.update(self.options.additional_fields or {})
        args = {
            "modelId": self.model_id,
            "body": json.dumps(body),
            "contentType": "application/json",
            "accept": "application/json",
        }
        return codec, args

    async def _invoke(self, request: GenerationRequest) -> Parsed:
        client = self._client
        if self._profile().api == "converse":
            body = self._converse_body(request)
            answer = await call_in_thread(lambda: client.converse(**body), **self._where())
            return bedrock_converse.parse_response(answer)
        codec, args = self._invoke_args(request)

        def invoke() -> tuple[dict[str, Any], dict[str, str]]:
            answer = client.invoke_model(**args)
            payload = json.loads(answer["body"].read())
            return payload, answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})

        payload, headers = await call_in_thread(invoke, **self._where())
        parsed = codec.parse(payload)
        if parsed.prompt_tokens is None or parsed.completion_tokens is None:
            prompt, completion = header_counts(headers)
            parsed = Parsed(
                parsed.text,
                parsed.finish_reason,
                parsed.prompt_tokens if parsed.prompt_tokens is not None else prompt,
                parsed.completion_tokens if parsed.completion_tokens is not None else completion,
            )
        return parsed

    async def _chunks(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        profile = self._profile()
        client = self._client
        if not profile.streaming:
            async for whole in super()._chunks(request):
                yield whole
            return
        if profile.api == "converse":
            body = self._converse_body(request)
            events = iterate_in_thread(
                lambda: client.converse_stream(**body)["stream"], **self._where()
            )
            async for event in events:
                if (chunk := bedrock_converse.parse_event(event)) is not None:
                    yield chunk
            return
        codec, args = self._invoke_args(request)
        assert codec.parse_chunk is not None  # profile.streaming is False otherwise
        stream = iterate_in_thread(
            lambda: client.invoke_model_with_response_stream(**args)["body"], **self._where()
        )
        async for event in stream:
            if "chunk" in event:
                piece = codec.parse_chunk(json.loads(event["chunk"]["bytes"]))
                if piece is not None:
                    yield piece
