"""A recipe: named columns forming a DAG, checked whole before any model is called.

``load_recipe_file`` / ``parse_recipe`` turn YAML (or a dict built in Python) into a
``Recipe``; every problem is one ``RecipeError`` line naming the column (unknown column or
attribute, cycle, bad sampler parameter, a subcategory lacking a category parent's value, seed
file missing or lacking a field).
"""

from __future__ import annotations

import graphlib
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from textnlp.errors import RecipeError, first_error, quoted
from textnlp.generation.export import RESERVED_COLUMNS, ExportSpec
from textnlp.generation.jinja_sandbox import JINJA
from textnlp.generation.recipes.columns import (
    Dialogue,
    Expression,
    LlmJudge,
    LlmStructured,
    LlmText,
    _LlmColumn,
    template_names,
)
from textnlp.generation.recipes.filters import Filter, JudgeFilter
from textnlp.generation.recipes.samplers import CategorySampler, Sampler, SubcategorySampler

Column = Annotated[
    Sampler | Expression | LlmText | LlmStructured | LlmJudge | Dialogue | Filter,
    Field(discriminator="type"),
]
LLM_COLUMNS = (LlmText, LlmStructured, LlmJudge, Dialogue)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: str = "1"
    description: str = ""
    #: Default model of the llm columns (None: the run's model).
    model: str | None = None
    #: Parameters every llm column starts from (a column's own ``params`` win).
    defaults: dict[str, Any] = {}
    #: The column a record's ``text`` is (None: the last llm column).
    output: str | None = None
    labels: list[str] = []
    columns: dict[str, Column]
    export: ExportSpec = ExportSpec()
    source: str = ""

    def __init__(self, **fields: Any) -> None:
        """A bad recipe is a ``RecipeError`` naming its file (``source``) or its id, built in
        code (``Recipe(id=..., columns=...)``) as read from a file (pydantic calls a model's
        own ``__init__`` when it validates), never pydantic's ``ValidationError``."""
        try:
            super().__init__(**fields)
        except ValidationError as exc:
            source, name = fields.get("source"), fields.get("id")
            label = (
                f"recipe {source}"
                if isinstance(source, str) and source
                else f"recipe {quoted(name)}"
                if isinstance(name, str)
                else "recipe"
            )
            raise RecipeError(f"{label}: {first_error(exc, root='recipe')}") from None

    @model_validator(mode="after")
    def _is_a_dag(self) -> Recipe:
        if not self.columns:
            raise ValueError("a recipe needs at least one column")
        for name in self.columns:
            if not _NAME.fullmatch(name) or name in RESERVED_COLUMNS:
                raise ValueError(
                    f"column name {name!r} must be a Jinja2 name (letters, digits, _) and not "
                    f"one of {', '.join(sorted(RESERVED_COLUMNS))}"
                )
            if name in JINJA.globals:  # {{ dict }} read Jinja's, not the column, unordered
                raise ValueError(
                    f"column name {name!r} is one of Jinja2's own names "
                    f"({', '.join(sorted(JINJA.globals))}); give the column another"
                )
        if "text" in self.columns and self.output != "text":
            raise ValueError("a column named 'text' must be the output column (output: text)")
        for name, column in self.columns.items():
            self._check_column(name, column)
        for name in [*self.labels, *self.export.references()]:
            if name not in self.columns:
                raise ValueError(f"{name!r} is not a column ({self._known()})")
        if self.output is not None and self.output not in self.columns:
            raise ValueError(f"output {self.output!r} is not a column ({self._known()})")
        kept: list[tuple[str, str | None]] = [("output", self.output)]
        kept += [("label", n) for n in self.labels]
        kept += [("export", n) for n in sorted(self.export.references())]
        for what, kept_name in kept:
            if kept_name in self.filters():  # a record keeps no filter's value: only its verdict
                raise ValueError(
                    f"{what} {kept_name!r} is a filter: a record keeps its columns' values, and a "
                    "filter only says whether the record passed"
                )
        if self.output is None and not any(self.generated()):
            raise ValueError("a recipe without llm columns must name its output column")
        try:
            self._order = list(graphlib.TopologicalSorter(self.graph()).static_order())
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])
            raise ValueError(f"columns form a cycle: {' -> '.join(cycle)}") from None
        return self

    def _check_reference(self, name: str, read: str, attrs: set[str]) -> None:
        if read in JINJA.globals:
            return
        if read == name:
            raise ValueError(f"column {name!r} reads itself")
        if read not in self.columns:
            raise ValueError(
                f"column {name!r} reads {read!r}, which is not a column ({self._known()})"
            )
        fields = getattr(self.columns[read], "fields", lambda: None)()
        missing = sorted(a for a in attrs if fields is not None and a not in fields)
        if missing:
            raise ValueError(
                f"column {name!r} reads {read}.{missing[0]}, but {read!r} has no field "
                f"{missing[0]!r} (fields: {', '.join(sorted(fields or ()))})"
            )

    def _check_column(self, name: str, column: Any) -> None:
        """What ``column`` reads exists, and is what it needs."""
        for read, attrs in reads(column).items():
            self._check_reference(name, read, attrs)
        parent = getattr(column, "parent", None)
        if isinstance(parent, str):
            self._check_reference(name, parent, set())
        if isinstance(column, SubcategorySampler):
            self._check_parent_values(name, column)
        if getattr(column, "reads_finish", False):
            cell = column.column
            if not isinstance(self.columns[cell], LLM_COLUMNS):
                raise ValueError(
                    f"filter {name!r} reads how {cell!r}'s model call ended, but {cell!r} "
                    f"is not an llm column"
                )
        if isinstance(column, JudgeFilter):
            self._check_judge_filter(name, column)
        if isinstance(column, Dialogue):
            hidden = sorted(
                set(template_names(*column.texts())) & {"turn", "last"} & set(self.columns)
            )
            if hidden:  # the dialogue's own turn and last message, never the column's value
                raise ValueError(
                    f"dialogue {name!r} reads {hidden[0]!r}, which in a dialogue is its own "
                    f"{'turn number' if hidden[0] == 'turn' else 'last message'}, not the "
                    f"column {hidden[0]!r}: rename the column"
                )

    def _check_judge_filter(self, name: str, rule: JudgeFilter) -> None:
        """The scores it reads exist and can reach its ``min`` (else every record fails it)."""
        judge = self.columns[rule.column]
        if not isinstance(judge, LlmJudge):
            raise ValueError(
                f"filter {name!r} reads judge scores, but {rule.column!r} is not an "
                f"llm-judge column"
            )
        criteria = rule.criteria if rule.criteria is not None else list(judge.rubric)
        for criterion in criteria:
            if criterion not in judge.rubric:
                raise ValueError(
                    f"filter {name!r} reads the score {criterion!r}, which {rule.column!r}'s "
                    f"rubric lacks (criteria: {', '.join(judge.rubric)})"
                )
        highest = max(max(judge.rubric[c].scores) for c in criteria)
        if rule.min > highest:
            raise ValueError(
                f"filter {name!r} needs a score of {rule.min:g}, above {rule.column!r}'s "
                f"highest ({highest}): every record would fail it"
            )

    def _check_parent_values(self, name: str, column: SubcategorySampler) -> None:
        """A category parent's values are known now: each needs choices in ``column``."""
        parent = self.columns[column.parent]
        if not isinstance(parent, CategorySampler):
            return  # another kind of parent's values are known only when drawn
        missing = column.unlisted(parent.drawable())
        if missing:
            given = list(column.values)
            raise ValueError(
                f"column {name!r} has no values for {column.parent} = "
                f"{_listed([quoted(key, 60) for key in missing])} "
                f"(values given for: {_listed([_shorten(key) for key in given])})"
            )

    def _known(self) -> str:
        return "columns: " + ", ".join(self.columns)

    # -- the graph ---------------------------------------------------------------------------
    def graph(self) -> dict[str, set[str]]:
        """Column -> the columns it depends on."""
        out: dict[str, set[str]] = {}
        for name, column in self.columns.items():
            deps = {r for r in column.references() if r not in JINJA.globals}
            parent = getattr(column, "parent", None)
            if isinstance(parent, str):
                deps.add(parent)
            out[name] = deps
        return out

    def order(self) -> list[str]:
        return list(self._order)

    def generated(self) -> list[str]:
        """The llm columns (their values go into a record's ``data``), in file order."""
        return [n for n, c in self.columns.items() if isinstance(c, LLM_COLUMNS)]

    def filters(self) -> list[str]:
        return [n for n, c in self.columns.items() if getattr(c, "type", "") == "filter"]

    def output_column(self) -> str:
        """``output``, else the last llm column that is not a judge (else the last one)."""
        if self.output is not None:
            return self.output
        made = [n for n in self.generated() if not isinstance(self.columns[n], LlmJudge)]
        return (made or self.generated())[-1]

    def llm_models(self, run_model: str) -> dict[str, str]:
        """Column -> the model it calls (a dialogue role with its own model is named
        ``column.role``)."""
        models: dict[str, str] = {}
        for name, column in self.columns.items():
            if isinstance(column, _LlmColumn):
                models[name] = column.model or self.model or run_model
            elif isinstance(column, Dialogue):
                for role_name, role in column.roles.items():
                    models[f"{name}.{role_name}"] = role.model or self.model or run_model
        return models

    def prepare(self, base_dir: Path | None = None) -> None:
        """Load what samplers need (seed files) and check the references into them: every
        check that needs no model. ``RecipeError`` names the problem."""
        for column in self.columns.values():
            prepare = getattr(column, "prepare", None)
            if prepare is not None:
                prepare(base_dir or self.base_dir)
        try:
            for name, column in self.columns.items():
                for read, attrs in reads(column).items():
                    self._check_reference(name, read, attrs)
        except ValueError as exc:
            raise RecipeError(f"recipe {self.id!r}: {exc}") from None

    @property
    def base_dir(self) -> Path:
        """Where the recipe's relative paths (seed files) start: its file's directory."""
        return Path(self.source).parent if self.source.endswith((".yaml", ".yml")) else Path()


def _shorten(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _listed(items: list[str], most: int = 10) -> str:
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def reads(column: Any) -> dict[str, set[str]]:
    """The columns ``column`` reads, each with the attributes read of it (where known)."""
    if hasattr(column, "reads"):
        return dict(column.reads())
    return {name: set() for name in column.references()}


def parse_recipe(raw: Any, *, source: str) -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {source} must be a YAML mapping")
    return Recipe.model_validate({**raw, "source": source})  # RecipeError: see Recipe.__init__


def is_recipe(raw: Any) -> bool:
    """A catalogue file is a recipe when it has ``columns`` (else it is a template)."""
    return isinstance(raw, dict) and "columns" in raw
