"""Each backend's catalogue ``options``, typed.

A catalogue entry's ``options`` are checked against its backend's model here when the
catalogue is read, so a misspelt key (``n_paralel: 8``) or a wrong type stops with one line
naming the entry and the key instead of being ignored. Backends read their options as typed
attributes (``LlamaCppOptions.of(spec).n_parallel``), never with ``dict.get`` and a default of
their own. This module is light on purpose: listing the catalogue imports no backend.

A backend added with ``register_backend`` may name its options model; without one its
options stay a free mapping that the backend reads itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from textnlp.deployment import ANTHROPIC_API_KEY

if TYPE_CHECKING:
    from textnlp.backends.spec import ModelSpec

#: The weight types llama.cpp's batched CPU kernels exist for (``LlamaCppOptions.weights``).
Weights = Literal["q4_0", "q8_0", "f16"]


class BackendOptions(BaseModel):
    """The options every backend may have: none. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def of(cls, spec: ModelSpec) -> Self:
        """``spec.options`` as this model (they were checked when the catalogue was read)."""
        return cls.model_validate(spec.options)


class LlamaCppOptions(BackendOptions):
    #: Sequences decoded together (the engine's slots), the batch size and threads (0: all).
    n_parallel: int = Field(32, ge=1, le=512)
    n_batch: int = Field(512, ge=1)
    n_threads: int = Field(0, ge=0)
    #: Candidates kept before top-p, as llama.cpp does by default (0: off).
    top_k: int = Field(40, ge=0)
    #: Re-encode the GGUF once as this type (None: as shipped).
    weights: Weights | None = None
    #: Prefill a shared prompt prefix once: keep freed slots' KV, copy another slot's prefix.
    reuse_prefix: bool = True
    #: The shortest prefix worth copying from another slot (a copy moves a whole KV stream).
    copy_min_tokens: int = Field(4, ge=1)
    #: Extra KV streams that keep the prompts of slots taken by new requests (0: none).
    shelf_streams: int = Field(16, ge=0, le=64)


class TransformersOptions(BackendOptions):
    #: ``cuda``, ``cuda:1``, ``cpu``...; None: CUDA when present.
    device: str | None = None
    #: None: bfloat16 on CUDA, float32 on the CPU.
    dtype: Literal["float32", "float16", "bfloat16"] | None = None
    #: transformers' continuous batching, or static micro-batches of ``generate``.
    batching: Literal["continuous", "static"] = "continuous"
    #: Sequences decoded together (static: one micro-batch; continuous: one step).
    max_batch_size: int = Field(32, ge=1)
    #: static: how long the first request of a micro-batch waits for others.
    batch_window_ms: float = Field(5.0, ge=0)
    #: Candidates kept before top-p (0: all), as transformers' ``generate`` by default.
    top_k: int = Field(50, ge=0)
    #: continuous: KV cache capacity and tokens per forward step; None: half the GPU memory
    #: left free after loading and transformers' 8192 (on the CPU: 16384 and 512).
    cache_tokens: int | None = Field(None, ge=256)
    max_batch_tokens: int | None = Field(None, ge=16)
    #: continuous: run transformers' warm-up (CUDA graph capture) before serving; None: on a GPU.
    warmup: bool | None = None


class RemoteOptions(BackendOptions):
    #: Read timeout of one call in seconds; None: the cloud context's (``models.timeout_s``).
    timeout_s: float | None = Field(None, gt=0)


class AwsOptions(RemoteOptions):
    region: str | None = None
    endpoint_url: str | None = None
    max_connections: int = Field(64, ge=1)


class BedrockOptions(AwsOptions):
    #: ``converse`` (the default) or the provider's own InvokeModel body.
    api: Literal["converse", "invoke"] = "converse"
    #: The provider when the model id does not say it (``anthropic``, ``amazon``...).
    provider: str | None = None
    #: Claude's InvokeModel body: the Messages API or the legacy text completions.
    anthropic_api: Literal["messages", "text"] = "messages"
    #: Override what the provider is known to support (None: the known value).
    system_prompts: bool | None = None
    streaming: bool | None = None
    #: Send ``top_p`` beside ``temperature``. None: not to Anthropic's models (recent Claude
    #: models refuse a request with both), to the others yes.
    send_top_p: bool | None = None
    #: Converse ``additionalModelRequestFields``.
    additional_fields: dict[str, Any] | None = None


class SageMakerOptions(AwsOptions):
    #: The container's contract: TGI / LMI ``inputs`` bodies, or OpenAI's messages.
    api: Literal["tgi", "openai"] = "tgi"
    #: The ``model`` field of OpenAI bodies (default: the catalogue id).
    model: str | None = None
    target_variant: str | None = None
    #: The model archive to run on a multi-model endpoint: its key below the endpoint's
    #: S3 prefix (``TargetModel``, e.g. ``reviews-small.tar.gz``).
    target_model: str | None = None
    inference_component: str | None = None
    custom_attributes: str | None = None


class OpenAIOptions(RemoteOptions):
    #: The served model name (default: the catalogue id).
    model: str | None = None
    #: None: ``chat`` for chat models, else ``completions``.
    api: Literal["chat", "completions"] | None = None
    #: ``vllm`` allows vLLM's extra request fields.
    flavour: Literal["openai", "vllm"] = "openai"
    #: The Secrets Manager path (or environment variable) of the API key; None: no key.
    api_key_secret: str | None = None
    #: Ask for usage on the last stream chunk (``stream_options``).
    stream_usage: bool = True


class AnthropicOptions(RemoteOptions):
    api_key_secret: str = ANTHROPIC_API_KEY
    api_base: str | None = None
    #: Recent Claude models take temperature or top_p, not both: top_p is sent only when asked.
    send_top_p: bool = False


#: backend name -> its options model (``register_backend`` adds to it).
OPTIONS: dict[str, type[BackendOptions]] = {
    "llamacpp": LlamaCppOptions,
    "transformers": TransformersOptions,
    "bedrock": BedrockOptions,
    "sagemaker": SageMakerOptions,
    "openai": OpenAIOptions,
    "anthropic": AnthropicOptions,
}
