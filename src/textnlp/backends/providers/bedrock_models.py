"""Which Bedrock API and body a model id gets.

Model ids name their provider (``anthropic.claude-v2``, ``us.meta.llama3-1-8b-instruct-v1:0``
for a cross-region inference profile), so newer models work by configuration alone. Converse
is the default where the model supports it (AWS docs: "Supported models and model features"),
InvokeModel with the provider's own body otherwise or when a catalogue entry asks for it with
``options: {api: invoke}``. Options ``system_prompts``, ``streaming`` and ``send_top_p``
(booleans) and ``anthropic_api`` (``messages`` or ``text``) override what the table below says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from textnlp.backends.options import BedrockOptions
from textnlp.backends.providers import (
    bedrock_ai21,
    bedrock_anthropic,
    bedrock_meta,
    bedrock_mistral,
    bedrock_titan,
)
from textnlp.backends.providers.common import Chunk, Parsed
from textnlp.domain import GenerationRequest

Api = Literal["converse", "invoke"]
REGION_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")


@dataclass(frozen=True)
class InvokeCodec:
    """A provider's InvokeModel body and answers. ``parse_chunk`` is None when it cannot stream."""

    body: Callable[[str, GenerationRequest], dict[str, Any]]
    parse: Callable[[dict[str, Any]], Parsed]
    parse_chunk: Callable[[dict[str, Any]], Chunk | None] | None


@dataclass(frozen=True)
class BedrockProfile:
    model_id: str
    provider: str
    api: Api
    system_prompts: bool
    streaming: bool
    #: Whether requests carry ``top_p`` (recent Claude models refuse it beside temperature).
    top_p: bool
    codec: InvokeCodec | None


def anthropic_messages(top_p: bool) -> InvokeCodec:
    return InvokeCodec(
        body=lambda _model, request: bedrock_anthropic.messages_body(request, top_p=top_p),
        parse=bedrock_anthropic.parse_messages_response,
        parse_chunk=bedrock_anthropic.parse_messages_event,
    )


def anthropic_text(top_p: bool) -> InvokeCodec:
    return InvokeCodec(
        body=lambda _model, request: bedrock_anthropic.text_completion_body(request, top_p=top_p),
        parse=bedrock_anthropic.parse_text_completion,
        parse_chunk=bedrock_anthropic.parse_text_completion_chunk,
    )


AI21_J2 = InvokeCodec(
    body=lambda _model, request: bedrock_ai21.request_body(request),
    parse=bedrock_ai21.parse_response,
    parse_chunk=None,
)
TITAN = InvokeCodec(
    body=lambda _model, request: bedrock_titan.request_body(request),
    parse=bedrock_titan.parse_response,
    parse_chunk=bedrock_titan.parse_chunk,
)
META = InvokeCodec(
    body=bedrock_meta.request_body,
    parse=bedrock_meta.parse_response,
    parse_chunk=bedrock_meta.parse_chunk,
)
MISTRAL = InvokeCodec(
    body=lambda _model, request: bedrock_mistral.request_body(request),
    parse=bedrock_mistral.parse_response,
    parse_chunk=bedrock_mistral.parse_chunk,
)


def provider_of(model_id: str) -> str:
    """``anthropic`` for ``anthropic.claude-v2`` and ``us.anthropic.claude-3-haiku...``."""
    name = model_id.rsplit("/", 1)[-1]  # ARNs end with the model or profile id
    for prefix in REGION_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name.split(".", 1)[0]


def _codec(
    provider: str, model_id: str, options: BedrockOptions, top_p: bool
) -> InvokeCodec | None:
    if provider == "anthropic":
        codec = anthropic_text if options.anthropic_api == "text" else anthropic_messages
        return codec(top_p)
    if provider == "ai21" and "j2" in model_id:
        return AI21_J2
    if provider == "amazon" and "titan-text" in model_id:
        return TITAN
    return {"meta": META, "mistral": MISTRAL}.get(provider)


def _capabilities(provider: str, model_id: str) -> tuple[bool, bool]:
    """(system prompts, streaming) of the Converse API for a model, from the AWS table."""
    if provider == "ai21":
        jurassic = "j2" in model_id
        return not jurassic, not jurassic
    if provider == "amazon":
        return "titan" not in model_id, True
    if provider == "mistral":
        return "large" in model_id or "small" in model_id, True
    return True, True


def bedrock_profile(model_id: str, options: BedrockOptions | None = None) -> BedrockProfile:
    options = options or BedrockOptions()
    provider = options.provider or provider_of(model_id)
    system, streaming = _capabilities(provider, model_id)
    api: Api = options.api
    top_p = provider != "anthropic" if options.send_top_p is None else options.send_top_p
    codec = _codec(provider, model_id, options, top_p)
    if api == "invoke" and codec is not None and codec.parse_chunk is None:
        streaming = False
    return BedrockProfile(
        model_id=model_id,
        provider=provider,
        api=api,
        system_prompts=system if options.system_prompts is None else options.system_prompts,
        streaming=streaming if options.streaming is None else options.streaming,
        top_p=top_p,
        codec=codec,
    )
