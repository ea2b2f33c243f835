"""What every remote backend shares: the ``CloudContext`` (secrets, prices, circuits, rate
limiter, retry policy, timeouts) and ``CloudBackend``, which wraps a subclass's transport in
retries, the circuit and the rate limit, and turns provider answers into completions with usage
and cost.

A subclass implements ``_open``/``_close`` (clients), ``_invoke`` (one request -> ``Parsed``)
and, when it can stream, ``_chunks`` (one request -> ``Chunk`` events). The composition root
(``textnlp.bootstrap``) builds one ``CloudContext`` from settings and the process's Redis client
and passes it to every backend it creates, so that all share circuits (read by
``/admin/health``) and limits; a backend cannot load without one.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from textnlp.backends.base import PerRequestBackend
from textnlp.backends.pricing import PriceTable
from textnlp.backends.providers.common import Chunk, Parsed
from textnlp.backends.ratelimit import ModelRateLimiter, RateLimit
from textnlp.backends.resilience import CircuitRegistry, CircuitState, Resilience, RetryPolicy
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, FinishReason, GenerationRequest, ModelInfo, TokenDelta, Usage
from textnlp.errors import BackendUnavailable, ConfigError, InvalidRequest

if TYPE_CHECKING:
    from textnlp.adapters.buckets import TokenBuckets
    from textnlp.adapters.secrets import SecretsProvider
    from textnlp.config import Settings

#: Characters per token assumed when a remote model's tokenizer is not at hand.
CHARS_PER_TOKEN = 4


@dataclass
class CloudContext:
    secrets: SecretsProvider
    prices: PriceTable = field(default_factory=PriceTable)
    circuits: CircuitRegistry = field(default_factory=CircuitRegistry)
    limiter: ModelRateLimiter = field(default_factory=ModelRateLimiter)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    default_rate_limit: RateLimit = field(default_factory=RateLimit)
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    aws_region: str | None = None
    aws_endpoint_url: str | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        prices: PriceTable,
        buckets: TokenBuckets | None = None,
        secrets: SecretsProvider | None = None,
    ) -> CloudContext:
        """The context of ``settings``; ``buckets`` are the process's token buckets (Redis
        where there is one), which count the model rate limits unless ``models.rate_limiter``
        is ``memory`` (then each process counts its own)."""
        from textnlp.adapters.buckets import RedisBuckets
        from textnlp.adapters.secrets import secrets_provider

        models = settings.models
        if models.rate_limiter == "redis" and not isinstance(buckets, RedisBuckets):
            raise ConfigError(
                "TEXTNLP_MODELS__RATE_LIMITER is redis but there is no Redis: set "
                "TEXTNLP_CACHE__URL (or TEXTNLP_CACHE__HOST) and build backends in bootstrap"
            )
        shared = buckets if models.rate_limiter != "memory" else None
        limiter = ModelRateLimiter(shared, max_wait_s=models.rate_limit_max_wait_s)

        def limit(value: object) -> RateLimit:
            return RateLimit(
                getattr(value, "requests_per_minute", None),
                getattr(value, "tokens_per_minute", None),
            )

        return cls(
            secrets=secrets or secrets_provider(settings),
            prices=prices,
            circuits=CircuitRegistry(models.circuit_failures, models.circuit_reset_s),
            limiter=limiter,
            retry=RetryPolicy(models.max_attempts, models.backoff_base_s, models.backoff_max_s),
            rate_limits={k: limit(v) for k, v in models.rate_limits.items()},
            default_rate_limit=limit(models.default_rate_limit),
            timeout_s=models.timeout_s,
            connect_timeout_s=models.connect_timeout_s,
            aws_region=settings.aws.region,
            aws_endpoint_url=settings.aws.endpoint_url,
        )

    def rate_limit(self, model_id: str) -> RateLimit:
        return self.rate_limits.get(model_id, self.default_rate_limit)


class CloudBackend(PerRequestBackend):
    """A model behind a remote API."""

    #: Backends built by a ``ModelPool`` share one context (circuits, limits, secrets).
    shares_cloud_context: ClassVar[bool] = True

    def __init__(self, spec: ModelSpec, *, context: CloudContext | None = None) -> None:
        super().__init__(spec)
        self._context = context
        self._resilience: Resilience | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def load(self) -> None:
        if self._resilience is not None:
            return
        if self._context is None:
            # Built by the composition root (``ModelPool``), never from the environment here.
            raise BackendUnavailable(
                "a remote backend needs a CloudContext (textnlp.bootstrap builds one)",
                backend=self.name,
                model=self.spec.id,
            )
        context = self._context
        self._resilience = Resilience(
            backend=self.name,
            model=self.spec.id,
            policy=context.retry,
            breaker=context.circuits.get(f"{self.name}:{self.spec.id}"),
            limiter=context.limiter,
            limit=context.rate_limit(self.spec.id),
        )
        await self._open(context)

    async def aclose(self) -> None:
        if self._resilience is None:
            return
        self._resilience = None
        await self._close()

    @property
    def context(self) -> CloudContext:
        if self._context is None:
            raise self._not_loaded()
        return self._context

    @property
    def resilience(self) -> Resilience:
        if self._resilience is None:
            raise self._not_loaded()
        return self._resilience

    def _not_loaded(self) -> BackendUnavailable:
        return BackendUnavailable(
            "backend not loaded; call load() first", backend=self.name, model=self.spec.id
        )

    # -- what subclasses implement ------------------------------------------------------------
    async def _open(self, context: CloudContext) -> None:
        """Create clients."""

    async def _close(self) -> None:
        """Close clients."""

    async def _invoke(self, request: GenerationRequest) -> Parsed:
        raise NotImplementedError

    async def _chunks(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        """Streamed events; by default the whole completion as one chunk."""
        parsed = await self._invoke(request)
        yield Chunk(
            parsed.text, parsed.finish_reason, parsed.prompt_tokens, parsed.completion_tokens
        )

    # -- the backend interface ----------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """An estimate: remote tokenizers are not at hand."""
        return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0

    def _admit(self, request: GenerationRequest) -> int:
        """Check the request; the tokens it may use (for the rate limiter)."""
        text = request.as_text()
        if not text.strip():
            raise InvalidRequest("empty prompt", backend=self.name, model=self.spec.id)
        prompt_tokens = self.count_tokens(text)
        self.check_context(prompt_tokens, request.params.max_tokens)
        return prompt_tokens

    def _usage(
        self, request: GenerationRequest, prompt: int | None, completion: int | None, text: str
    ) -> Usage:
        usage = Usage(
            prompt_tokens=prompt if prompt is not None else self.count_tokens(request.as_text()),
            completion_tokens=completion if completion is not None else self.count_tokens(text),
        )
        return self.context.prices.priced(self.spec, usage)

    async def complete(self, request: GenerationRequest) -> Completion:
        return await self._complete_with(request, lambda: self._invoke(request))

    async def _complete_with(
        self, request: GenerationRequest, operation: Callable[[], Awaitable[Parsed]]
    ) -> Completion:
        prompt_tokens = self._admit(request)
        started = time.perf_counter()
        parsed = await self.resilience.call(
            operation, tokens=prompt_tokens + request.params.max_tokens
        )
        return Completion(
            text=parsed.text,
            finish_reason=parsed.finish_reason,
            model=self.spec.id,
            usage=self._usage(request, parsed.prompt_tokens, parsed.completion_tokens, parsed.text),
            latency_s=time.perf_counter() - started,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        prompt_tokens = self._admit(request)
        parts: list[str] = []
        reason: FinishReason = "stop"
        prompt: int | None = None
        completion: int | None = None
        chunks = self.resilience.stream(
            lambda: self._chunks(request), tokens=prompt_tokens + request.params.max_tokens
        )
        async for chunk in chunks:
            if chunk.text:
                parts.append(chunk.text)
                yield TokenDelta(text=chunk.text)
            reason = chunk.finish_reason or reason
            if chunk.prompt_tokens is not None:
                prompt = chunk.prompt_tokens
            if chunk.completion_tokens is not None:
                completion = chunk.completion_tokens
        usage = self._usage(request, prompt, completion, "".join(parts))
        yield TokenDelta(text="", finish_reason=reason, usage=usage)

    def circuit_state(self) -> CircuitState | None:
        return self._resilience.breaker.state() if self._resilience is not None else None

    def info(self) -> ModelInfo:
        info = super().info()
        state = self.circuit_state()
        if state is not None and not state.available:
            return info.model_copy(
                update={"available": False, "reason": f"circuit open: {state.last_error}"}
            )
        return info
