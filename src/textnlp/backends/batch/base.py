"""The provider-neutral interface of batch inference: OpenAI's Batch API, Anthropic's Message
Batches and Bedrock's model invocation jobs behind one ``BatchProvider``.

A provider turns requests keyed by their record index into request lines (``encode``: the
translation, kept in each provider's ``*_lines`` module), submits a part of them as one provider
job (``submit`` -> the provider's job id), reports its state (``poll``), hands back what it
produced (``results`` -> ``{index: Completion | BatchError}``; an index absent from the answer
was never processed: the batch expired or was cancelled) and cancels it (``cancel``). ``split``
cuts the lines into parts within the provider's limits (request count and bytes per batch).

``find`` closes the window between a submit and the worker's record of it: a worker that died
after the provider accepted a part, before it wrote the batch's id down, leaves a paid batch
the next worker must re-attach to rather than submit again. Each provider tags what it submits
with the job and part (OpenAI: batch ``metadata``; Anthropic, whose batches take no metadata:
the job and part in every custom id, matched on the batches created since the submit began;
Bedrock and SageMaker: a job name made of the job and part) and ``find`` looks it up.

Completions of a batch are priced at the provider's batch price (``PriceTable.batch_priced``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from textnlp.backends.base import Backend
from textnlp.backends.pricing import PriceTable
from textnlp.backends.providers.common import Parsed
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, Usage
from textnlp.errors import BackendUnavailable, InvalidParameter

#: Characters per token assumed when a batch answer carries no token counts.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class BatchLimits:
    """What one provider batch may hold. Parts smaller than ``min_requests`` are not sent (their
    records are generated online)."""

    max_requests: int
    max_bytes: int
    min_requests: int = 1


@dataclass(frozen=True)
class BatchLine:
    """One request of a batch: its record index, its request and its encoded line."""

    index: int
    request: GenerationRequest
    line: bytes


@dataclass(frozen=True)
class BatchState:
    """A provider job's state: ``ended`` once it will change no more; ``status`` is the
    provider's own word, ``counts`` its request counts, ``error`` why it failed as a whole."""

    status: str
    ended: bool
    failed: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


#: What a provider's reason for a failed batch names of the deployment: its files' S3
#: locations (``s3://`` or the HTTPS form) and ARNs (the IAM role the provider assumed, a KMS
#: key); each ends before a sentence's full stop.
_END = r"""(?=\.?(?:[\s"'<>,;)\]]|$))"""
_S3_LOCATION = re.compile(
    rf"""\b(?:s3://|https://[\w.-]*\bs3[\w.-]*\.amazonaws\.com/)[^\s"'<>,;)\]]*?{_END}"""
)
_ARN = re.compile(rf"""\barn:aws[\w-]*:(?P<service>[\w-]+):[^\s"'<>,;)\]]*?{_END}""")


def public_batch_error(text: str) -> str:
    """A provider's reason for a failed batch as the job's owner reads it: Bedrock's and
    SageMaker's name the platform's bucket, keys and role, which are the operators' (the
    worker logs the whole text)."""
    text = _S3_LOCATION.sub("<S3 location>", text)
    return _ARN.sub(lambda found: f"<{found['service']} ARN>", text)


@dataclass(frozen=True)
class BatchError:
    """A request the provider answered with an error (the record is retried online)."""

    code: str
    message: str


BatchResults = dict[int, Completion | BatchError]


class BatchProvider(ABC):
    """One provider's batch API for one model."""

    #: ``openai``, ``anthropic``, ``bedrock``.
    name: ClassVar[str]
    limits: ClassVar[BatchLimits]

    def __init__(self, spec: ModelSpec, prices: PriceTable) -> None:
        self.spec = spec
        self.prices = prices

    @abstractmethod
    def encode(self, index: int, request: GenerationRequest) -> bytes:
        """One JSONL line (no newline) asking for ``request`` under ``index``'s custom id."""

    @abstractmethod
    async def submit(self, job_id: str, part: int, lines: Sequence[BatchLine]) -> str:
        """Send one part; the provider's id of the batch it made. Sending the same part of the
        same job again makes no second batch where the provider offers an idempotency token."""

    @abstractmethod
    async def find(
        self, job_id: str, part: int, lines: Sequence[BatchLine], since: float
    ) -> str | None:
        """The id of the batch an earlier ``submit`` of this part made, None when the provider
        has none (``since``: the epoch second that submit began; the lookup may use it to stop
        listing older batches)."""

    @abstractmethod
    async def poll(self, batch_id: str) -> BatchState: ...

    @abstractmethod
    async def results(
        self, batch_id: str, requests: dict[int, GenerationRequest], *, job_id: str, part: int
    ) -> BatchResults:
        """What an ended batch produced, by record index (``requests`` are its requests, for
        token estimates where an answer has no usage; ``job_id`` and ``part`` the submit's,
        so that a provider whose lookup could re-attach to a batch not of this part ignores
        that batch's answers)."""

    @abstractmethod
    async def cancel(self, batch_id: str) -> None: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Close what the provider opened itself (clients it shares are not closed)."""

    def lines(self, requests: dict[int, GenerationRequest]) -> list[BatchLine]:
        return [BatchLine(i, r, self.encode(i, r)) for i, r in sorted(requests.items())]

    def split(self, lines: Sequence[BatchLine]) -> list[list[BatchLine]]:
        """Parts within ``limits``, in index order (a part smaller than ``min_requests`` is
        dropped: its records go online)."""
        limits = self.limits
        parts: list[list[BatchLine]] = []
        current: list[BatchLine] = []
        size = 0
        for line in lines:
            length = len(line.line) + 1
            if length > limits.max_bytes:
                raise InvalidParameter(
                    f"record {line.index}'s request ({length} bytes) is larger than a "
                    f"{self.name} batch may be ({limits.max_bytes} bytes)"
                )
            full = len(current) >= limits.max_requests or size + length > limits.max_bytes
            if current and full:
                parts.append(current)
                current, size = [], 0
            current.append(line)
            size += length
        if current:
            parts.append(current)
        return [p for p in parts if len(p) >= limits.min_requests]

    def answer(
        self, answer: Parsed | BatchError, request: GenerationRequest
    ) -> Completion | BatchError:
        return answer if isinstance(answer, BatchError) else self.completion(answer, request)

    def completion(self, parsed: Parsed, request: GenerationRequest) -> Completion:
        """A batch answer as a completion priced at the batch price."""
        prompt = parsed.prompt_tokens
        if prompt is None:
            prompt = estimate_tokens(request.as_text())
        completion = parsed.completion_tokens
        if completion is None:
            completion = estimate_tokens(parsed.text)
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
        return Completion(
            text=parsed.text,
            finish_reason=parsed.finish_reason,
            model=self.spec.id,
            usage=self.prices.batch_priced(self.spec, usage),
            latency_s=0.0,
        )


def sdk_client(backend: Backend) -> Any:
    """The loaded backend's SDK client: a batch shares it (key, base URL, timeouts, transport)
    rather than opening a second one from the same settings."""
    client = getattr(backend, "_client", None)
    if client is None:
        raise BackendUnavailable(
            "backend not loaded; call load() first", backend=backend.name, model=backend.spec.id
        )
    return client


def estimate_tokens(text: str) -> int:
    return max(1, -(-len(text) // CHARS_PER_TOKEN)) if text else 0


#: Seconds of clock difference between this machine and a provider allowed by ``find``.
CLOCK_SKEW_S = 300.0


def job_name(job_id: str, part: int) -> str:
    """The provider job name of a part (Bedrock and SageMaker: at most 63 characters of
    letters, digits and hyphens): the same for every worker, so a second create of the part
    finds the first."""
    return f"textnlp-{job_id}-part-{part}"


def custom_id(index: int) -> str:
    """The custom id of record ``index`` (OpenAI and Anthropic: ``^[a-zA-Z0-9_-]{1,64}$``)."""
    return f"record-{index}"


def index_of(custom: str, prefix: str = "record-") -> int | None:
    """The record index of a custom id, None for one that is not ours."""
    if not custom.startswith(prefix) or not custom[len(prefix) :].isdigit():
        return None
    return int(custom[len(prefix) :])


class BatchFiles(Protocol):
    """The platform's storage for one job's provider files (``generated/batch-jobs/<job>/
    provider/``): names are relative to that prefix, keys are full storage keys."""

    def key(self, name: str) -> str: ...

    def put(self, name: str, data: bytes) -> str:
        """Store ``data`` under ``name``; its key."""
        ...

    def get(self, key: str) -> bytes: ...

    def find(self, name: str) -> bytes | None:
        """The object ``name``, None when there is none."""
        ...

    def list(self, key_prefix: str) -> list[str]: ...

    def s3_uri(self, key: str) -> str | None:
        """``s3://bucket/key``; None where the storage is not S3 (the local profile)."""
        ...
