"""Backends for worker fault tests, registered in the worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.fake_backend import FakeBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, TokenDelta
from textnlp.errors import InvalidRequest


class SlowFakeBackend(FakeBackend):
    """FakeBackend whose delay comes from the catalogue entry (``options.delay_s``)."""

    name = "fake-slow"

    def __init__(self, spec: ModelSpec | None = None) -> None:
        options = spec.options if spec else {}
        super().__init__(spec, delay_s=float(options.get("delay_s", 0.0)))
        #: A file made at the first request: a test's sign that the command is generating.
        self._started_file = options.get("started_file")

    async def complete(self, request: GenerationRequest) -> Completion:
        if self._started_file:
            Path(self._started_file).touch()
        return await super().complete(request)


class PoisonBackend(FakeBackend):
    """Every request fails: the job is poison."""

    name = "poison"

    def __init__(self, spec: ModelSpec | None = None) -> None:
        super().__init__(spec)

    async def complete(self, request: GenerationRequest) -> Completion:
        raise RuntimeError("this model always fails")


class RefusingBackend(FakeBackend):
    """The provider refuses every request as invalid (an HTTP 400): the job's input is wrong."""

    name = "refuses"

    def __init__(self, spec: ModelSpec | None = None) -> None:
        super().__init__(spec)

    async def complete(self, request: GenerationRequest) -> Completion:
        raise InvalidRequest("the provider refused the request", backend=self.name, model="x")


class LateRefusingBackend(FakeBackend):
    """Answers its first ``options.answers`` requests, then refuses each as invalid: a job
    whose input goes wrong part way (a later prompt its provider refuses)."""

    name = "refuses-later"

    def __init__(self, spec: ModelSpec | None = None) -> None:
        super().__init__(spec)
        self._answers_left = int((spec.options if spec else {}).get("answers", 0))

    async def complete(self, request: GenerationRequest) -> Completion:
        if self._answers_left <= 0:
            raise InvalidRequest("the provider refused the request", backend=self.name, model="x")
        self._answers_left -= 1
        return await super().complete(request)


class MidStreamFailureBackend(FakeBackend):
    """A stream that fails after its first token (a bug, a driver's surprise mid-answer)."""

    name = "fails-mid-stream"

    def __init__(self, spec: ModelSpec | None = None) -> None:
        super().__init__(spec)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        yield TokenDelta(text="Hello ")
        raise RuntimeError("this stream always breaks")


class CrashBackend(FakeBackend):
    """The worker process dies (SIGKILL) on the first request: no exception, no cleanup."""

    name = "crash"

    def __init__(self, spec: ModelSpec | None = None) -> None:
        super().__init__(spec)

    async def complete(self, request: GenerationRequest) -> Completion:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


class GatedBackend(FakeBackend):
    """Answers while fewer than ``GatedBackend.allowed`` requests were answered; the others
    wait, in flight, until a test allows more (or they are cancelled). Counts kept on the class
    (one worker in the test's process); ``reset`` before use."""

    name = "gated"
    allowed = 0
    answered = 0
    waiting = 0
    cancelled = 0

    def __init__(self, spec: ModelSpec | None = None) -> None:
        super().__init__(spec)

    @classmethod
    def reset(cls, allowed: int) -> None:
        cls.allowed, cls.answered, cls.waiting, cls.cancelled = allowed, 0, 0, 0

    async def complete(self, request: GenerationRequest) -> Completion:
        cls = GatedBackend
        cls.waiting += 1
        try:
            while cls.answered >= cls.allowed:
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cls.cancelled += 1
            raise
        finally:
            cls.waiting -= 1
        cls.answered += 1
        return await super().complete(request)


def register() -> None:
    from textnlp.backends.registry import register_backend

    register_backend("fake-slow", "tests.support.job_backends:SlowFakeBackend")
    register_backend("poison", "tests.support.job_backends:PoisonBackend")
    register_backend("crash", "tests.support.job_backends:CrashBackend")
    register_backend("gated", "tests.support.job_backends:GatedBackend")
    register_backend("refuses", "tests.support.job_backends:RefusingBackend")
    register_backend("refuses-later", "tests.support.job_backends:LateRefusingBackend")
    register_backend("fails-mid-stream", "tests.support.job_backends:MidStreamFailureBackend")
    register_backend("openai-fake", "tests.support.priced_backend:PricedOpenAIFake")


MODELS_YAML = """
models:
  - id: fake-fast
    backend: fake-slow
    context_length: 4096
    options: {delay_s: 0.002}
  - id: fake-slow
    backend: fake-slow
    context_length: 4096
    options: {delay_s: 0.02}
  - id: fake-crawl
    backend: fake-slow
    context_length: 4096
    options: {delay_s: 0.05}
  - id: poison
    backend: poison
    context_length: 4096
  - id: crash
    backend: crash
    context_length: 4096
  - id: gated
    backend: gated
    context_length: 4096
  - id: refuses
    backend: refuses
    context_length: 4096
  - id: refuses-later
    backend: refuses-later
    context_length: 4096
    options: {answers: 12}
  - id: fails-mid-stream
    backend: fails-mid-stream
    context_length: 4096
  - id: fake-priced
    backend: openai-fake
    endpoint: http://priced.test/v1
    context_length: 4096
"""
