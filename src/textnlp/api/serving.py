"""Completions serving: API requests -> ``GenerationService`` -> the completions shape.

The router parses and authorises; this turns a prompt or a template into ``GenerationRequest``s,
checks the settings' bounds before any model is touched, calls the service (whose response
cache answers deterministic requests) and renders OpenAI's completions shape. It counts
tokens and cache hits for the metrics. With an ``owner`` (the caller's user id) it applies the
per-user spending cap before a priced model runs: each request reserves its worst case and
settles with what it cost, also when its client goes away (``SpendingService``); unpriced models
touch neither the database nor a thread. The owner also
scopes the response cache: a user's ``cached: true`` answers only what that user asked before.
Templates are looked up by catalogue id only: a path would read the server's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import anyio

from textnlp.api.schemas import (
    CompletionChoice,
    CompletionResponse,
    CompletionUsage,
    GenerateTextRequest,
    InvokeRequest,
    SamplingFields,
)
from textnlp.config import ApiSettings
from textnlp.domain import Completion, GenerationParams, GenerationRequest, Usage
from textnlp.errors import InvalidParameter
from textnlp.observability.metrics import Metrics
from textnlp.services.generation import GenerationService
from textnlp.services.spending import Reservation, SpendingService, cost_of


@dataclass(frozen=True)
class StreamEvent:
    text: str
    finish_reason: str | None = None
    usage: CompletionUsage | None = None
    #: What the stream cost (its last event; None: the model has no price).
    cost_usd: float | None = None


def completion_id() -> str:
    return "cmpl-" + secrets.token_hex(12)


class CompletionsServing:
    def __init__(
        self,
        service: GenerationService,
        bounds: ApiSettings,
        metrics: Metrics,
        spending: SpendingService | None = None,
    ) -> None:
        self.service = service
        self.bounds = bounds
        self.metrics = metrics
        self.spending = spending

    # Building requests (cheap, before any model loads) ---------------------------------------
    def model_id(self, requested: str | None) -> str:
        return self.service.spec(requested).id  # unknown -> ModelNotFound (404)

    def requests_for(self, body: GenerateTextRequest) -> list[GenerationRequest]:
        if body.template is not None:
            template = self.service.templates.by_id(body.template)  # ids only, never paths
            variables = template.sample_variables(body.template_seed, 0, dict(body.variables))
            system, user = template.render(variables)
        else:
            system, user = body.system, body.prompt or ""
        self._check_prompt((system or "") + user)
        base = GenerationRequest.chat(user, system=system, params=self.params(body))
        return self._per_choice(base, body.n)

    def invoke_requests(self, body: InvokeRequest) -> list[GenerationRequest]:
        params = self.params(body)
        if body.messages is not None:
            self._check_prompt("".join(m.content for m in body.messages))
            base = GenerationRequest(messages=tuple(body.messages), params=params)
        else:
            self._check_prompt((body.system or "") + (body.prompt or ""))
            base = GenerationRequest.chat(body.prompt or "", system=body.system, params=params)
        return self._per_choice(base, body.n)

    def params(self, body: SamplingFields) -> GenerationParams:
        if body.max_tokens > self.bounds.max_tokens:
            raise InvalidParameter(
                f"max_tokens must be at most {self.bounds.max_tokens}", parameter="max_tokens"
            )
        if body.n > self.bounds.max_n:
            raise InvalidParameter(f"n must be at most {self.bounds.max_n}", parameter="n")
        return GenerationParams(
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            stop=tuple(body.stop),
            n=1,  # one request per choice (below)
        )

    def _check_prompt(self, text: str) -> None:
        if len(text) > self.bounds.max_prompt_chars:
            raise InvalidParameter(
                f"prompt over {self.bounds.max_prompt_chars} characters", parameter="prompt"
            )

    @staticmethod
    def _per_choice(base: GenerationRequest, n: int) -> list[GenerationRequest]:
        """n choices: n requests; a fixed seed becomes seed, seed+1... so choices differ."""
        if n == 1:
            return [base]
        seed = base.params.seed
        return [
            base.model_copy(
                update={
                    "params": base.params.model_copy(
                        update={"seed": None if seed is None else (seed + i) % 2**32}
                    )
                }
            )
            for i in range(n)
        ]

    @staticmethod
    def prompt_groups(count: int, prompts: int) -> list[int]:
        """For each of ``count`` requests, the choices of ``prompts`` prompts in order, which
        prompt it asks: usage counts each prompt once, as OpenAI's does, whatever ``n`` (and
        a prompt listed twice twice)."""
        per_prompt = max(1, count // max(1, prompts))
        return [i // per_prompt for i in range(count)]

    # Spending --------------------------------------------------------------------------------
    async def admit(
        self, owner: str | None, model_id: str, requests: Sequence[GenerationRequest]
    ) -> None:
        """Refuse (``QuotaExceeded``) when ``owner`` has reached their spending cap, or when
        the worst case of ``requests`` (prompt + ``max_tokens`` each) would pass it."""
        if self.spending is not None and owner is not None:
            await self.service.admit(owner, model_id, requests)

    async def reserve(
        self, owner: str | None, model_id: str, requests: Sequence[GenerationRequest]
    ) -> Reservation | None:
        """Hold the worst case of ``requests`` in ``owner``'s spend while they run
        (``QuotaExceeded`` when it would pass their cap); None: nothing is metered."""
        if self.spending is None or owner is None:
            return None
        return await self.service.reserve(owner, model_id, requests)

    # Running ---------------------------------------------------------------------------------
    async def complete(
        self,
        model_id: str,
        requests: list[GenerationRequest],
        owner: str | None = None,
        *,
        prompts: int = 1,
    ) -> CompletionResponse:
        """The answer to ``requests``: the choices of ``prompts`` prompts, in order (prompt
        0's, then prompt 1's...)."""
        reservation = await self.reserve(owner, model_id, requests)
        try:
            results = await asyncio.gather(
                *(self.service.complete(model_id, request, owner) for request in requests),
                return_exceptions=True,
            )
        except BaseException:
            # Cancelled (the client went away): the model may have generated it all.
            if reservation is not None:
                with anyio.CancelScope(shield=True):
                    await self.service.settle(reservation, reservation.worst_usd)
            raise
        completions = [r for r in results if isinstance(r, Completion)]
        if reservation is not None:  # choices that failed cost nothing
            await self.service.settle(reservation, cost_of(completions))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return self.render(model_id, completions, self.prompt_groups(len(requests), prompts))

    def render(
        self, model_id: str, completions: list[Completion], groups: Sequence[int] | None = None
    ) -> CompletionResponse:
        """The answer; ``groups`` (``prompt_groups``) counts each prompt's tokens once."""
        prompts: dict[int, int] = {}
        for i, completion in enumerate(completions):
            prompts.setdefault(i if groups is None else groups[i], completion.usage.prompt_tokens)
        usage = Usage(
            prompt_tokens=sum(prompts.values()),
            completion_tokens=sum(c.usage.completion_tokens for c in completions),
        )
        cached = all(c.cached for c in completions)
        # Tokens generated now; cached answers generated none.
        self.metrics.observe_tokens(
            model_id, sum(c.usage.completion_tokens for c in completions if not c.cached)
        )
        return CompletionResponse(
            id=completion_id(),
            model=model_id,
            choices=[
                CompletionChoice(index=i, text=c.text, finish_reason=c.finish_reason)
                for i, c in enumerate(completions)
            ],
            usage=CompletionUsage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
            ),
            cached=cached,
        )

    async def stream(
        self, model_id: str, request: GenerationRequest, owner: str | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Token events; the caller runs ``admit`` first (to answer a refusal as an error).
        With an ``owner``, the stream reserves its worst case before it starts and settles
        when it ends, however it ends: with its usage's cost, or cut short (a client gone, an
        error after some tokens) with what it generated: its prompt and the tokens sent."""
        if self.spending is None or owner is None:
            async for event in self._events(model_id, request, owner):
                yield event
            return
        partial = await self.service.meter(model_id, request)
        reservation = await self.service.reserve(owner, model_id, [request])
        sent: list[str] = []
        final: list[float] = []  # the usage's cost, once it came
        failed = False
        try:
            async with contextlib.aclosing(self._events(model_id, request, owner)) as events:
                async for event in events:
                    if event.text:
                        sent.append(event.text)
                    if event.usage is not None:
                        final.append(event.cost_usd or 0.0)
                    yield event
        except Exception:
            failed = True
            raise
        finally:
            if final:
                cost = final[-1]
            elif failed and not sent:  # refused before any token: nothing generated
                cost = 0.0
            else:
                cost = partial("".join(sent), len(sent))
            # A client gone cancels the stream's scope (sse-starlette), which would cancel
            # every await here again: the settlement is done before the stream ends.
            with anyio.CancelScope(shield=True):
                await self.service.settle(reservation, cost)

    async def _events(
        self, model_id: str, request: GenerationRequest, owner: str | None
    ) -> AsyncGenerator[StreamEvent, None]:
        async for delta in self.service.stream(model_id, request, owner):
            usage = None
            cost = None
            if delta.usage is not None:
                cost = delta.usage.cost_usd
                usage = CompletionUsage(
                    prompt_tokens=delta.usage.prompt_tokens,
                    completion_tokens=delta.usage.completion_tokens,
                    total_tokens=delta.usage.total_tokens,
                )
                self.metrics.observe_tokens(model_id, delta.usage.completion_tokens)
            yield StreamEvent(delta.text, delta.finish_reason, usage, cost)
