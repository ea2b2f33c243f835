"""The backend interface every model engine implements.

Async first: ``generate`` takes a list so that engines which batch can decode requests together;
``stream`` yields token deltas. Heavy work (loading weights, opening clients) happens in
``load()``, never in ``__init__``. Errors are raised from the tree in ``textnlp.errors``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import ClassVar, Self

from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, ModelInfo, TokenDelta
from textnlp.errors import ContextWindowExceeded, ModelUnavailable

#: Tokens a chat format adds per message, and for the reply's header, where the backend does
#: not render it: role markers and separators (ChatML's ``<|im_start|>user\n...<|im_end|>\n``
#: and Llama 3's are 5; OpenAI documents 3 or 4). A template that adds a default system prompt
#: adds more: the engines that have it (llama.cpp, transformers) count what they render.
CHAT_OVERHEAD_TOKENS = 5


async def collect(model: str, deltas: AsyncIterator[TokenDelta]) -> Completion:
    """One completion from a token stream: the deltas' text, the last one's reason and usage."""
    started = time.perf_counter()
    parts: list[str] = []
    final: TokenDelta | None = None
    async for delta in deltas:
        parts.append(delta.text)
        final = delta
    assert final is not None and final.usage is not None and final.finish_reason is not None
    return Completion(
        text="".join(parts),
        finish_reason=final.finish_reason,
        model=model,
        usage=final.usage,
        latency_s=time.perf_counter() - started,
    )


@functools.cache
def package_dir(package: str) -> str | None:
    """Where ``package`` is installed (None: not importable here). Cached: every catalogue
    listing asks it of every model, and what is installed does not change while a process runs."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or ())
    return locations[0] if locations else (spec.origin or "")


def unavailable(spec: ModelSpec, reason: str) -> ModelUnavailable:
    """The error of a ``load`` that finds its model cannot run here after all (its file gone
    since the pool's availability check): what that check raises, so that callers read the
    model is not available, not the reason, which names the deployment's files
    (``errors.public_message``); the CLI prints it whole."""
    return ModelUnavailable(
        f"model {spec.id} is not available here: {reason}", parameter="model", model=spec.id
    )


def installed(*packages: str) -> bool:
    return all(package_dir(package) is not None for package in packages)


class Backend(ABC):
    """A loaded model that turns requests into completions."""

    #: The ``backend`` name used in catalogue entries.
    name: ClassVar[str]
    batching: ClassVar[bool] = False
    #: Whether decoding keeps to a request's ``grammar`` (the others ignore it); a wrapper
    #: (cache, spending cap) says what its inner backend does.
    grammars: bool = False

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @classmethod
    def availability(cls, spec: ModelSpec) -> tuple[bool, str]:
        """Whether ``spec`` can run here, and why not. Cheap: no model is loaded."""
        return True, ""

    @classmethod
    def key_secret(cls, spec: ModelSpec) -> str | None:
        """The secret holding the API key ``spec``'s client needs (None: it needs none)."""
        return None

    @classmethod
    def credentials_missing(cls) -> str | None:
        """Why the ambient credentials this backend's clients sign with are not found here
        (None: found, or none needed). It may ask a metadata service: callers cache it."""
        return None

    async def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights or open clients."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what ``load`` took."""

    async def __aenter__(self) -> Self:
        await self.load()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """One completion per request, in order."""

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Token deltas as they are produced; the last carries finish_reason and usage."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer (an estimate for remote models)."""

    def prompt_token_count(self, request: GenerationRequest) -> int:
        """At least the tokens the model reads for ``request``, chat template included: what a
        spending cap reserves for the prompt. By default the messages' text plus
        ``CHAT_OVERHEAD_TOKENS`` per message and once more for the reply's header (the role
        markers and separators a chat format adds); engines that render the template count it.
        """
        text = self.count_tokens(request.as_text())
        if request.prompt is not None:
            return text
        return text + CHAT_OVERHEAD_TOKENS * (len(request.messages) + 1)

    @classmethod
    def streams(cls, spec: ModelSpec) -> bool:
        """Whether ``stream`` yields tokens as they come (else one delta with the whole text)."""
        return True

    @classmethod
    def describe(cls, spec: ModelSpec) -> ModelInfo:
        """What the catalogue says of ``spec`` served by this class; nothing is loaded."""
        ok, reason = cls.availability(spec)
        return ModelInfo(
            id=spec.id,
            backend=spec.backend,
            context_length=spec.context_length,
            description=spec.description,
            provider=spec.provider,
            chat=spec.chat,
            streaming=cls.streams(spec),
            batching=cls.batching,
            available=ok,
            reason=reason,
        )

    def info(self) -> ModelInfo:
        return self.describe(self.spec)

    def fingerprint(self) -> str:
        """Identifies the weights that answer; part of every response-cache key."""
        return f"{self.name}:{self.spec.id}:{self.spec.path}:{self.spec.endpoint}"

    def check_context(self, prompt_tokens: int, max_tokens: int) -> None:
        """Refuse a request whose prompt plus ``max_tokens`` cannot fit the context."""
        limit = self.spec.context_length
        if prompt_tokens + max_tokens > limit:
            raise ContextWindowExceeded(
                f"prompt ({prompt_tokens} tokens) + max_tokens ({max_tokens}) exceeds the "
                f"context of {self.spec.id} ({limit} tokens)",
                backend=self.name,
                model=self.spec.id,
            )

    async def generate_one(self, request: GenerationRequest) -> Completion:
        return (await self.generate([request]))[0]


class UnloadedBackend(Backend):
    """A run's model that the run never calls (a recipe whose columns are samplers and
    expressions, or call models of their own): its catalogue entry, for the run's checks and
    provenance, with no weights loaded and no credentials asked for. A call is a bug."""

    name = "unloaded"

    def _never(self) -> RuntimeError:
        return RuntimeError(f"model {self.spec.id!r} was not loaded: this run calls no such model")

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        raise self._never()

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        raise self._never()

    def count_tokens(self, text: str) -> int:
        raise self._never()

    def prompt_token_count(self, request: GenerationRequest) -> int:
        raise self._never()


class WrappedBackend(Backend):
    """A backend that adds one concern (a price, a spending cap, a response cache) around
    ``inner`` and hands everything else to it. ``inner`` is loaded and closed by its owner;
    a wrapper that replaces its inner backend in a pool forwards ``load``/``aclose`` itself."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.grammars = inner.grammars

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return await self.inner.generate(requests)

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        return self.inner.stream(request)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_token_count(self, request: GenerationRequest) -> int:
        return self.inner.prompt_token_count(request)

    def check_context(self, prompt_tokens: int, max_tokens: int) -> None:
        self.inner.check_context(prompt_tokens, max_tokens)

    def info(self) -> ModelInfo:
        return self.inner.info()

    def fingerprint(self) -> str:
        return self.inner.fingerprint()


class ScopedBackend(WrappedBackend):
    """``inner`` serving one owner (a server's user): each request carries the owner as its
    ``cache_scope``, so the engine reuses only that owner's cached prompts."""

    def __init__(self, inner: Backend, owner: str) -> None:
        super().__init__(inner)
        self.name = inner.name  # type: ignore[misc]  # labels and traces name the real backend
        self.owner = owner

    def _scoped(self, request: GenerationRequest) -> GenerationRequest:
        return request.model_copy(update={"cache_scope": self.owner})

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return await self.inner.generate([self._scoped(r) for r in requests])

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        return self.inner.stream(self._scoped(request))


class PerRequestBackend(Backend):
    """A backend that serves one request per call (remote APIs): ``generate`` runs them
    concurrently and leaves batching to the server."""

    @abstractmethod
    async def complete(self, request: GenerationRequest) -> Completion:
        """One completion for one request."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return list(await asyncio.gather(*(self.complete(r) for r in requests)))
