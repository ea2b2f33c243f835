"""SageMaker real-time endpoints (``sagemaker-runtime``): ``invoke_endpoint`` and
``invoke_endpoint_with_response_stream``.

The default contract is Hugging Face TGI / LMI's (``{"inputs", "parameters"}`` ->
``[{"generated_text"}]``, token events when streaming; ``providers.sagemaker_tgi``). Newer
LMI / vLLM containers that speak OpenAI's messages API are chosen with ``options: {api:
openai}`` (``providers.openai``). ``options.target_variant`` picks a production variant of a
multi-variant endpoint (the design's ``textnlp-multi-model`` serves ``gpt-j-6b`` and
``llama-7b``)::

    - id: gpt-j-6b
      backend: sagemaker
      endpoint: textnlp-multi-model
      context_length: 2048
      options: {target_variant: gpt-j-6b, region: us-east-1}

``options.target_model`` names the archive to run on a multi-model endpoint (SageMaker loads it
from the endpoint's S3 prefix on first use, ``TargetModel``). ``InvokeEndpointWithResponseStream``
takes no ``TargetModel``, so such a model answers a stream in one piece::

    - id: reviews-small
      backend: sagemaker
      endpoint: textnlp-small-models
      options: {target_model: reviews-small.tar.gz}

Other options: ``inference_component``, ``custom_attributes``, ``model`` (the ``model`` field
sent to OpenAI-style containers), ``timeout_s``, ``max_connections``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any, TypeVar

from textnlp.backends.aws_common import AwsRuntimeBackend, call_in_thread, iterate_in_thread
from textnlp.backends.cloud import CloudContext
from textnlp.backends.options import SageMakerOptions
from textnlp.backends.providers import openai as openai_body
from textnlp.backends.providers import sagemaker_tgi
from textnlp.backends.providers.common import Chunk, Parsed
from textnlp.backends.providers.http_errors import event_error, told
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationRequest
from textnlp.errors import BackendUnavailable, ConfigError

log = logging.getLogger(__name__)
P = TypeVar("P", Parsed, Chunk)


class SageMakerBackend(AwsRuntimeBackend):
    name = "sagemaker"
    service = "sagemaker-runtime"
    options_model = SageMakerOptions
    options: SageMakerOptions  # narrowed: the property of AwsRuntimeBackend builds this type

    @classmethod
    def streams(cls, spec: ModelSpec) -> bool:
        # Response streams cannot name a model of a multi-model endpoint.
        return SageMakerOptions.of(spec).target_model is None

    @classmethod
    def availability(cls, spec: ModelSpec) -> tuple[bool, str]:
        if not spec.endpoint:
            return False, "no SageMaker endpoint name (catalogue 'endpoint:')"
        return super().availability(spec)

    @property
    def api(self) -> str:
        return self.options.api

    async def _open(self, context: CloudContext) -> None:
        if not self.spec.endpoint:
            raise ConfigError(f"model {self.spec.id}: a sagemaker entry needs 'endpoint:'")
        await super()._open(context)

    def request_body(self, request: GenerationRequest, *, stream: bool = False) -> dict[str, Any]:
        """The container's request body (batch transform sends the same, one per line)."""
        if self.api == "tgi":
            return sagemaker_tgi.request_body(request, stream=stream)
        body = openai_body.chat_body(self.options.model or self.spec.id, request)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _args(self, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        assert self.spec.endpoint is not None
        args: dict[str, Any] = {
            "EndpointName": self.spec.endpoint,
            "Body": json.dumps(self.request_body(request, stream=stream)).encode("utf-8"),
            "ContentType": "application/json",
        }
        if not stream:
            args["Accept"] = "application/json"
        optional = {
            "TargetModel": self.options.target_model,
            "TargetVariant": self.options.target_variant,
            "InferenceComponentName": self.options.inference_component,
            "CustomAttributes": self.options.custom_attributes,
        }
        args.update({name: value for name, value in optional.items() if value})
        return args

    async def _invoke(self, request: GenerationRequest) -> Parsed:
        client = self._client
        args = self._args(request, stream=False)

        def invoke() -> tuple[bytes, str]:
            answer = client.invoke_endpoint(**args)
            return answer["Body"].read(), str(answer.get("ContentType") or "")

        raw, content_type = await call_in_thread(invoke, **self._where())
        try:
            payload = json.loads(raw)
        except ValueError as exc:  # a proxy's HTML page, a container's plain-text error
            log.warning("sagemaker model %s: a body that is not JSON: %r", self.spec.id, raw[:500])
            raise BackendUnavailable(
                f"the endpoint answered a body that is not JSON "
                f"({content_type or 'no content type'}, {len(raw)} bytes)",
                **self._where(),
            ) from exc
        try:
            return self.parse_body(payload)
        except UNEXPECTED as exc:
            raise BackendUnavailable(
                f"endpoint answered an unexpected body: {exc}", **self._where()
            ) from exc

    def parse_body(self, payload: Any) -> Parsed:
        """The container's answer to ``request_body`` (raises one of ``UNEXPECTED`` on a body
        of another shape)."""
        if self.api == "tgi":
            parsed = sagemaker_tgi.parse_response(payload)
        else:
            parsed = openai_body.parse_response(payload)
        return well_typed(parsed)

    async def _chunks(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        if not self.streams(self.spec):
            async for whole in super()._chunks(request):
                yield whole
            return
        client = self._client
        args = self._args(request, stream=True)
        parse = sagemaker_tgi.parse_event if self.api == "tgi" else openai_body.parse_chunk
        lines = sagemaker_tgi.EventLines()
        events = iterate_in_thread(
            lambda: client.invoke_endpoint_with_response_stream(**args)["Body"], **self._where()
        )
        async for event in events:
            part = event.get("PayloadPart")
            if not part:
                continue
            try:
                for decoded in lines.feed(part.get("Bytes", b"")):
                    if (chunk := self._parse_event(parse, decoded)) is not None:
                        yield chunk
            except UNEXPECTED as exc:
                raise self._unexpected_event(exc) from exc
        try:
            for decoded in lines.flush():
                if (chunk := self._parse_event(parse, decoded)) is not None:
                    yield chunk
        except UNEXPECTED as exc:
            raise self._unexpected_event(exc) from exc

    def _unexpected_event(self, exc: Exception) -> BackendUnavailable:
        """A stream event that is not JSON, or not of the container's shape."""
        log.warning("sagemaker model %s: an unexpected stream event: %r", self.spec.id, exc)
        return BackendUnavailable(
            f"the endpoint's stream sent an unexpected event ({type(exc).__name__})",
            **self._where(),
        )

    def _parse_event(
        self, parse: Callable[[dict[str, Any]], Chunk | None], event: dict[str, Any]
    ) -> Chunk | None:
        """A stream event's chunk; the error a container sends inside its 200 stream (a prompt
        too long, an out-of-memory) raised, never taken for the answer's end."""
        if (error := event_error(event)) is not None:
            cls, message = error
            text = told(cls, message, "an error")
            raise cls(f"the model server's stream: {text}", **self._where())
        chunk = parse(event)
        return well_typed(chunk) if chunk is not None else None


#: What reading a body of another shape than the container's raises (json's errors are
#: ValueErrors; a list where an object was due, an AttributeError...).
UNEXPECTED = (ValueError, TypeError, AttributeError, KeyError, IndexError)


def well_typed(answer: P) -> P:
    """``answer`` when its text is text (a container's ``"generated_text": null`` would fail
    later, outside the backend, as no error of the tree: ``TypeError``). A token count that is
    no whole number is dropped: the text stands, the count is estimated as when none is sent."""
    if not isinstance(answer.text, str):
        raise TypeError(f"the answer's text is {type(answer.text).__name__}, not a string")
    return replace(
        answer,
        prompt_tokens=_count(answer.prompt_tokens),
        completion_tokens=_count(answer.completion_tokens),
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
