"""Templates and recipes: the catalogue as ``textnlp recipes list`` shows it (``TemplateLibrary``:
built-ins and the user's templates directory), one entry's detail with a rendered sample
prompt, and a preview of a few records (``GenerationService.preview``, the service behind
``textnlp preview``, here with the user's own cache and spending cap).

Entries are looked up by catalogue id only (never a path on the server): an unknown id is a
404. A recipe's sample prompt is its first llm column whose inputs are sampler or expression
columns, rendered with record 0's values (seed 0); a recipe where no such column exists shows
its prompts as written. Everything a template file says is shown escaped (user templates are
user content).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.csrf import CsrfChecked
from textnlp.api.console.pages.playground_form import MAX_SAMPLES, Source
from textnlp.api.console.render import page
from textnlp.api.console.session import ConsoleUser
from textnlp.domain import MAX_SEED, ModelInfo, Record
from textnlp.errors import TextNLPError
from textnlp.generation.recipes.columns import Dialogue, as_text
from textnlp.generation.recipes.recipe import LLM_COLUMNS, Recipe
from textnlp.generation.recipes.sample import recipe_sample, template_sample
from textnlp.generation.templates import PromptTemplate, Variable
from textnlp.services.generation import DatasetJob, GenerationService

router = APIRouter(prefix="/catalog")

#: Longest value shown in a preview cell, and in a column's or variable's description.
CELL_CHARS = 2000
SPEC_CHARS = 240


def generation_of(request: Request) -> GenerationService:
    service: GenerationService = request.app.state.generation
    return service


# Describing entries --------------------------------------------------------------------------
def _clip(text: str, limit: int = SPEC_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listing(values: list[Any], most: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f", … ({len(values)} in all)" if len(values) > most else "")


def describe_variable(variable: Variable) -> str:
    """How a template variable is sampled, in a line."""
    if variable.values is not None:
        text = "one of " + _listing(variable.values)
    elif variable.weights is not None:
        text = "weighted: " + _listing([f"{k} ({w:g})" for k, w in variable.weights.items()])
    elif variable.range is not None:
        text = f"from {variable.range[0]} to {variable.range[1]}"
    elif variable.expr is not None:
        text = f"derived: {variable.expr}"
    else:
        text = f"fixed: {variable.value}"
    return _clip(text)


def column_kind(column: Any) -> str:
    kind = str(getattr(column, "type", "?"))
    return f"filter:{column.rule}" if kind == "filter" else kind


def describe_column(column: Any) -> str:
    """A column's settings in a line (prompts are shown apart)."""
    settings = column.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        exclude={"type", "description", "prompt", "system", "rule"},
    )
    return _clip(json.dumps(settings, ensure_ascii=False, default=str)) if settings else ""


@dataclass(frozen=True)
class FieldView:
    """A variable (or fixable recipe column) as a form field shows it."""

    name: str
    kind: str
    spec: str
    description: str


def fields_of(source: Source) -> list[FieldView]:
    """What a run may fix: a template's variables, a recipe's sampler and expression columns."""
    if isinstance(source, PromptTemplate):
        return [
            FieldView(name, "variable", describe_variable(v), v.description)
            for name, v in source.variables.items()
        ]
    skip = {*source.generated(), *source.filters()}
    return [
        FieldView(name, column_kind(c), describe_column(c), c.description)
        for name, c in source.columns.items()
        if name not in skip
    ]


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str
    version: str
    columns: list[str]
    description: str
    origin: str


def origin_of(source: Source, user_dir: Path | None) -> str:
    if user_dir is not None and source.source.startswith(str(user_dir)):
        return "yours"
    return "built-in"


def entry_of(source: Source, user_dir: Path | None) -> Entry:
    if isinstance(source, Recipe):
        columns = [f"{name} ({column_kind(c)})" for name, c in source.columns.items()]
        kind = "recipe"
    else:
        columns = [*source.variables, f"text (llm-{source.output.type})"]
        kind = "template"
    origin = origin_of(source, user_dir)
    return Entry(source.id, kind, source.version, columns, source.description, origin)


def entries(request: Request) -> list[Entry]:
    """Recipes, then templates (as ``textnlp recipes list`` orders them)."""
    library = generation_of(request).templates
    user_dir = request.app.state.settings.user_templates_dir
    sources: list[Source] = [*library.recipes(), *library.all()]
    return [entry_of(source, user_dir) for source in sources]


def llm_prompts(recipe: Recipe) -> list[dict[str, Any]]:
    """Each llm column's prompts as written (a dialogue's per role), with model and parameters."""
    prompts = []
    for name in recipe.generated():
        column = recipe.columns[name]
        if isinstance(column, Dialogue):
            for role_name, role in column.roles.items():
                prompts.append(
                    {
                        "column": f"{name}, {role_name} role",
                        "kind": f"dialogue of {column.turns} turns, {column.first} first",
                        "model": role.model or recipe.model,
                        "system": role.system,
                        "prompt": role.prompt,
                        "params": role.params,
                    }
                )
            continue
        if not isinstance(column, LLM_COLUMNS):
            continue  # generated() names llm columns only
        prompts.append(
            {
                "column": name,
                "kind": column_kind(column),
                "model": column.model or recipe.model,
                "system": column.system,
                "prompt": column.prompt,
                "params": column.params,
            }
        )
    return prompts


# Previews ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreviewRow:
    index: int
    status: str
    error: str | None
    cells: list[tuple[str, str]]
    tokens: int
    cost_usd: float | None


def preview_row(record: Record) -> PreviewRow:
    values = {**record.variables, **(record.data or {})}
    if record.provenance.cells is None:  # a template's record: its text is its one llm cell
        values["text"] = record.text
    cells = [(name, _clip(as_text(value), CELL_CHARS)) for name, value in values.items()]
    tokens = record.provenance.prompt_tokens + record.provenance.completion_tokens
    return PreviewRow(
        record.index, record.status, record.error, cells, tokens, record.provenance.cost_usd
    )


async def preview_fragment(
    request: Request, user: ConsoleUser, job: DatasetJob, source: Source
) -> Response:
    """A few records of ``job`` (the caller found ``source`` in the catalogue by id)."""
    records = await generation_of(request).preview(job, owner=user.id)
    rows = [preview_row(record) for record in records]
    costs = [r.cost_usd for r in rows if r.cost_usd is not None]
    context = {
        "source": source,
        "rows": rows,
        "passed": sum(r.status == "ok" for r in rows),
        "cost_usd": sum(costs) if costs else None,
    }
    return page(request, "catalog_preview.html", context, user=user)


# Pages ---------------------------------------------------------------------------------------
def models_of(request: Request) -> list[ModelInfo]:
    return generation_of(request).models()


@router.get("")
async def catalog_page(request: Request, user: ConsoleUser) -> Response:
    rows = await run_in_threadpool(entries, request)
    return page(request, "catalog.html", {"entries": rows}, user=user)


@router.get("/{source_id}")
async def catalog_entry(source_id: str, request: Request, user: ConsoleUser) -> Response:
    generation = generation_of(request)
    source = generation.templates.source(source_id)  # ids only; unknown: 404
    settings = request.app.state.settings
    context: dict[str, Any] = {
        "source": source,
        "entry": entry_of(source, settings.user_templates_dir),
        "fields": fields_of(source),
        "models": await run_in_threadpool(models_of, request),
        "default_model": settings.default_model,
        "max_samples": MAX_SAMPLES,
        "sample_error": None,
        "sample": None,
    }
    if isinstance(source, Recipe):
        graph = source.graph()
        context["columns"] = [
            (name, column_kind(column), sorted(graph[name]), describe_column(column))
            for name, column in ((n, source.columns[n]) for n in source.order())
        ]
        context["prompts"] = llm_prompts(source)
        context["model"] = source.model or settings.default_model
    else:
        context["model"] = settings.default_model
    try:
        if isinstance(source, Recipe):
            context["sample"] = await run_in_threadpool(recipe_sample, source)
        else:
            context["sample"] = template_sample(source)
    except TextNLPError as exc:  # a variable that cannot be sampled, a seed file missing
        context["sample_error"] = exc.message
    except (jinja2.TemplateError, TypeError, ValueError) as exc:  # an expression that fails
        context["sample_error"] = f"the sample cannot be rendered: {exc}"
    return page(request, "catalog_detail.html", context, user=user)


@router.post("/{source_id}/preview")
async def catalog_preview(
    source_id: str,
    request: Request,
    user: ConsoleUser,
    _csrf: CsrfChecked,
    model: Annotated[str | None, Form(max_length=200)] = None,
    count: Annotated[int, Form(ge=1, le=MAX_SAMPLES)] = 3,
    seed: Annotated[int, Form(ge=0, le=MAX_SEED)] = 0,
) -> Response:
    source = generation_of(request).templates.source(source_id)  # ids only; unknown: 404
    job = DatasetJob(template=source.id, count=count, output=None, model=model or None, seed=seed)
    return await preview_fragment(request, user, job, source)
