"""Provider batch inference: ``BatchProvider`` (``base``) for OpenAI's Batch API, Anthropic's
Message Batches, Bedrock batch inference and SageMaker batch transform; ``batch_provider``
picks the one of a loaded backend, ``unsupported`` says why a model has none."""

from __future__ import annotations

from typing import Any

from textnlp.backends.base import Backend
from textnlp.backends.batch.base import BatchFiles, BatchProvider


def _classes() -> dict[str, type[Backend]]:
    from textnlp.backends.anthropic_api import AnthropicBackend
    from textnlp.backends.bedrock import BedrockBackend
    from textnlp.backends.openai_compat import OpenAICompatBackend
    from textnlp.backends.sagemaker import SageMakerBackend

    return {
        "openai": OpenAICompatBackend,
        "anthropic": AnthropicBackend,
        "bedrock": BedrockBackend,
        "sagemaker": SageMakerBackend,
    }


def unsupported(backend_class: type[Backend]) -> str | None:
    """Why models of ``backend_class`` have no provider batch; None when they have one."""
    if any(issubclass(backend_class, cls) for cls in _classes().values()):
        return None
    return (
        f"the {backend_class.name} backend has no provider batch API "
        "(OpenAI, Anthropic, Bedrock and SageMaker models have)"
    )


def batch_provider(
    backend: Backend,
    files: BatchFiles,
    *,
    bedrock_role_arn: str = "",
    bedrock_client: Any = None,
    sagemaker_client: Any = None,
) -> BatchProvider:
    """The batch API of a loaded ``backend`` (its own SDK client for OpenAI and Anthropic; a
    control-plane client of the backend's region and endpoint for Bedrock and SageMaker, unless
    one is given)."""
    from textnlp.backends.anthropic_api import AnthropicBackend
    from textnlp.backends.batch.anthropic import AnthropicBatch
    from textnlp.backends.batch.bedrock import BedrockBatch
    from textnlp.backends.batch.openai import OpenAIBatch
    from textnlp.backends.batch.sagemaker import SageMakerBatch
    from textnlp.backends.bedrock import BedrockBackend
    from textnlp.backends.openai_compat import OpenAICompatBackend
    from textnlp.backends.sagemaker import SageMakerBackend
    from textnlp.errors import InvalidParameter

    if isinstance(backend, OpenAICompatBackend):
        return OpenAIBatch(backend)
    if isinstance(backend, AnthropicBackend):
        return AnthropicBatch(backend)
    if isinstance(backend, BedrockBackend):
        return BedrockBatch(backend, files, bedrock_role_arn, bedrock_client)
    if isinstance(backend, SageMakerBackend):
        return SageMakerBatch(backend, files, sagemaker_client)
    raise InvalidParameter(unsupported(type(backend)) or "no provider batch")


__all__ = ["BatchFiles", "BatchProvider", "batch_provider", "unsupported"]
