"""A sample prompt of a template or recipe: what its first model request looks like for
record 0, without calling a model (the console's catalogue shows it beside the prompts as
written)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import TextNLPError
from textnlp.generation.recipes.base import CellContext
from textnlp.generation.recipes.columns import Dialogue, Expression, as_text
from textnlp.generation.recipes.recipe import LLM_COLUMNS, Recipe
from textnlp.generation.templates import PromptTemplate


@dataclass(frozen=True)
class SamplePrompt:
    column: str | None
    system: str | None
    user: str
    values: dict[str, str]


def template_sample(template: PromptTemplate) -> SamplePrompt:
    values = template.sample_variables(0, 0)
    system, user = template.render(values)
    return SamplePrompt(None, system, user, {k: as_text(v) for k, v in values.items()})


def recipe_sample(recipe: Recipe) -> SamplePrompt | None:
    """The first llm column whose inputs are all cheap, rendered with record 0's values."""
    recipe.prepare()  # seed files (once per recipe; the pipeline does the same)
    graph = recipe.graph()
    row: dict[str, Any] = {}
    for name in recipe.order():
        column = recipe.columns[name]
        if not graph[name] <= row.keys() or isinstance(column, Dialogue):
            continue
        try:
            if isinstance(column, LLM_COLUMNS):
                request = column.request(row, GenerationParams())
                return _rendered(name, request, row)
            elif isinstance(column, Expression):
                row[name] = column.evaluate(row)
            elif getattr(column, "type", "") != "filter":
                context = CellContext(
                    seed=0, index=0, column=name, row=row, base_dir=recipe.base_dir
                )
                row[name] = column.sample(context)  # type: ignore[union-attr]
        except (TextNLPError, jinja2.TemplateError, ValueError, KeyError, TypeError):
            continue  # a value this sample cannot make: the columns reading it are skipped
    return None


def _rendered(column: str, request: GenerationRequest, row: dict[str, Any]) -> SamplePrompt:
    """A chat request's system and user messages; a raw one's prompt (control tokens and
    all: what a Magpie column sends)."""
    messages = request.messages
    system = next((m.content for m in messages if m.role == "system"), None)
    user = "\n\n".join(m.content for m in messages if m.role == "user")
    values = {k: as_text(v) for k, v in row.items()}
    return SamplePrompt(column, system, user or request.prompt or "", values)
