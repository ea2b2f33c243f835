"""The playground: a model, a template, recipe or free prompt, its variables and parameters; a
few samples with their tokens streaming in, then their token counts, latency and cost.

Templates and free prompts stream (``POST /playground/stream``: Server-Sent Events read by
``static/playground.js`` with ``fetch``, since ``EventSource`` cannot POST) through
``CompletionsServing``, the path of ``/api/v1/generate/text`` with ``stream``: the same
request building and bounds, the user's spending cap (checked before each sample), cost
recording and token metrics. A recipe gets a preview of a few records instead
(``POST /playground/preview``, ``GenerationService.preview``). Beside them, the equivalent CLI
command and API call (``playground_form``), redrawn as the form changes.

The stream's events (``event:`` name, JSON ``data``): ``start`` {model, samples}; ``token``
{index, text}; ``sample`` {index, finish_reason, usage, cost_usd}; ``done`` {model, samples,
usage, cost_usd, latency_ms, first_token_ms}; ``error`` {error: {type, message, status}} as
the API's streams send it, for a failure or a server shutting down (then the stream ends).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.csrf import CsrfChecked
from textnlp.api.console.pages.catalog import fields_of, generation_of, models_of, preview_fragment
from textnlp.api.console.pages.playground_form import (
    MAX_SAMPLES,
    PlaygroundForm,
    Source,
    api_call,
    cli_commands,
    find_source,
)
from textnlp.api.console.render import page
from textnlp.api.console.session import ConsoleUser, session_watch
from textnlp.api.deps import CredentialWatch
from textnlp.api.errors import sse_error
from textnlp.api.event_streams import event_stream
from textnlp.api.schemas import CompletionUsage
from textnlp.api.serving import CompletionsServing
from textnlp.domain import GenerationRequest
from textnlp.errors import InvalidParameter
from textnlp.generation.recipes.recipe import Recipe

router = APIRouter(prefix="/playground")


def serving_of(request: Request) -> CompletionsServing:
    serve: CompletionsServing = request.app.state.serving
    return serve


def _kind(source: Source | None) -> str:
    if source is None:
        return "prompt"
    return "recipe" if isinstance(source, Recipe) else "template"


def _source_context(request: Request, form: PlaygroundForm) -> dict[str, Any]:
    """The parts of the page that follow the chosen source: its fields and the commands."""
    source = find_source(generation_of(request).templates, form.source)
    fields = fields_of(source) if source is not None else []
    # Fields of a source chosen before (the form may be sent while its fields are swapped).
    names = {field.name for field in fields}
    variables = {k: v for k, v in form.variables.items() if k in names}
    form = form.model_copy(update={"variables": variables})
    return {
        "form": form,
        "source": source,
        "kind": _kind(source),
        "fields": fields,
        "commands": [*cli_commands(form, source), api_call(form, source, str(request.base_url))],
        # The prompt boxes hold what the server takes (api.max_prompt_chars), no more.
        "max_prompt_chars": request.app.state.settings.api.max_prompt_chars,
    }


@router.get("")
async def playground_page(request: Request, user: ConsoleUser) -> Response:
    """The page; its query string (``?source=product-review&model=...``) preselects fields."""
    form = PlaygroundForm.parse(request.query_params.multi_items(), known_only=True)
    library = generation_of(request).templates
    models = await run_in_threadpool(models_of, request)
    if form.model is not None and form.model not in {m.id for m in models}:
        # The select cannot show it: the commands must not name it either.
        form = form.model_copy(update={"model": None})
    context = _source_context(request, form) | {
        "models": models,
        "default_model": request.app.state.settings.default_model,
        "recipes": library.recipes(),
        "templates": library.all(),
        "max_samples": MAX_SAMPLES,
    }
    return page(request, "playground.html", context, user=user)


@router.get("/fields")
async def source_fields(request: Request, user: ConsoleUser) -> Response:
    """htmx: the fields of the chosen source and its run button (out of band); the
    ``playground-source`` event it triggers redraws the commands."""
    form = PlaygroundForm.parse(request.query_params.multi_items())
    response = page(request, "playground_fields.html", _source_context(request, form), user=user)
    response.headers["HX-Trigger"] = "playground-source"  # the commands redraw for it
    return response


@router.post("/commands")
async def commands(request: Request, user: ConsoleUser, _csrf: CsrfChecked) -> Response:
    """htmx: the commands of the form as it is now (a POST: a prompt may be long)."""
    form = PlaygroundForm.parse((await request.form()).multi_items())
    context = _source_context(request, form)
    return page(request, "playground_commands.html", context, user=user)


@router.post("/preview")
async def preview(request: Request, user: ConsoleUser, _csrf: CsrfChecked) -> Response:
    """htmx: a few records of the chosen template or recipe (``n`` of them)."""
    form = PlaygroundForm.parse((await request.form()).multi_items())
    source = find_source(generation_of(request).templates, form.source)
    if source is None:
        raise InvalidParameter("choose a template or a recipe to preview", parameter="source")
    return await preview_fragment(request, user, form.preview_job(), source)


@router.post("/stream")
async def stream(request: Request, user: ConsoleUser, _csrf: CsrfChecked) -> Response:
    """Samples of a template or the free prompt, as Server-Sent Events."""
    started = time.perf_counter()
    form = PlaygroundForm.parse((await request.form()).multi_items())
    source = find_source(generation_of(request).templates, form.source)
    if isinstance(source, Recipe):
        raise InvalidParameter("a recipe is previewed, not streamed", parameter="source")
    if source is None and not (form.prompt or "").strip():
        raise InvalidParameter("write a prompt, or choose a template", parameter="prompt")
    serve = serving_of(request)
    model_id = serve.model_id(form.model)
    requests = serve.requests_for(form.text_request())
    # Refusals (a spending cap, a model that cannot load) answer as errors, not mid-stream.
    await serve.admit(user.id, model_id, requests[:1])
    await serve.service.load(model_id)
    events = _events(serve, model_id, requests, user.id, started, session_watch(request))
    # A server shutting down ends the samples with an error event (``event_streams``).
    return event_stream(events, lambda exc: [sse_error(exc)], sep="\n")


@dataclass
class _Totals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    first_token_ms: float | None = None

    def add(self, usage: CompletionUsage | None, cost: float | None) -> None:
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost


def _event(name: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": name, "data": json.dumps(data, ensure_ascii=False)}


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


async def _events(
    serve: CompletionsServing,
    model_id: str,
    requests: list[GenerationRequest],
    owner: str,
    started: float,
    session: CredentialWatch,
) -> AsyncIterator[dict[str, str]]:
    totals = _Totals()
    yield _event("start", {"model": model_id, "samples": len(requests)})
    try:
        for index, generation in enumerate(requests):
            if index:
                # The samples before may have reached the cap.
                await serve.admit(owner, model_id, [generation])
            usage: CompletionUsage | None = None
            cost: float | None = None
            finish: str | None = None
            deltas = serve.stream(model_id, generation, owner)
            try:
                async for delta in deltas:
                    await session.check()  # a logout or a disabled user stops the samples
                    if delta.text:
                        if totals.first_token_ms is None:
                            totals.first_token_ms = _ms(started)
                        yield _event("token", {"index": index, "text": delta.text})
                    finish = delta.finish_reason or finish
                    usage = delta.usage or usage
                    cost = delta.cost_usd if delta.cost_usd is not None else cost
            finally:  # a client gone mid-stream frees the model's slot now
                aclose = getattr(deltas, "aclose", None)
                if aclose is not None:
                    await aclose()
            totals.add(usage, cost)
            sample = {
                "index": index,
                "finish_reason": finish,
                "usage": usage.model_dump() if usage is not None else None,
                "cost_usd": cost,
            }
            yield _event("sample", sample)
    except Exception as exc:  # the page hears of any failure; a 500 is logged
        yield sse_error(exc)
        return
    usage_total = totals.prompt_tokens + totals.completion_tokens
    yield _event(
        "done",
        {
            "model": model_id,
            "samples": len(requests),
            "usage": {
                "prompt_tokens": totals.prompt_tokens,
                "completion_tokens": totals.completion_tokens,
                "total_tokens": usage_total,
            },
            "cost_usd": totals.cost_usd,
            "latency_ms": _ms(started),
            "first_token_ms": totals.first_token_ms,
        },
    )
