"""Prompt templates: Jinja2 prompts in YAML, with variables sampled reproducibly.

A template file::

    id: product-review
    version: "1.0"
    description: Product reviews labelled with rating and sentiment
    system: You write realistic customer reviews.
    user: Write a {{ sentiment }} review of {{ product }} ({{ rating }}/5 stars).
    variables:
      product: {values: [wireless earbuds, a coffee grinder]}     # uniform choice
      rating: {weights: {1: 1, 2: 1, 3: 2, 4: 3, 5: 3}}            # weighted choice
      words: {range: [30, 80]}                                      # integer range (inclusive)
      temperature_c: {range: [10.0, 30.0]}                          # float range
      sentiment: {expr: "{{ 'positive' if rating >= 4 else 'negative' }}"}  # derived
      language: {value: English}                                    # fixed
    output: {type: json, schema: {...JSON Schema...}}               # or {type: text}
    defaults: {max_tokens: 120, temperature: 0.8}

Variables are sampled in file order from a random generator seeded with (run seed, record
index), so record ``i`` of a run is the same whatever the concurrency or an interruption.
"""

from __future__ import annotations

import hashlib
import math
import random
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
import yaml
from jinja2 import meta
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from textnlp import strict_yaml
from textnlp.domain import GenerationRequest
from textnlp.errors import InvalidParameter, TemplateError, TemplateNotFound, first_error, quoted
from textnlp.generation.jinja_sandbox import JINJA, check_templates, jinja_template
from textnlp.generation.json_grammar import schema_grammar
from textnlp.generation.scalars import natural
from textnlp.services.text_boundary import invalid_text_at
from textnlp.small_files import read_small_text
from textnlp.strict_json import extract_json_object
from textnlp.validation.safe_schema import (
    MAX_DEPTH,
    compiled,
    deeper_than,
    expanded_size,
    instance_problem,
)

if TYPE_CHECKING:
    from textnlp.generation.recipes.recipe import Recipe


class Variable(BaseModel):
    """One template variable; exactly one of its fields is set."""

    model_config = ConfigDict(extra="forbid")

    values: list[Any] | None = None
    weights: dict[str, float] | None = None
    range: tuple[int, int] | tuple[float, float] | None = None
    expr: str | None = None
    value: Any = None
    description: str = ""

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Variable:
        kinds = [k for k in ("values", "weights", "range", "expr") if getattr(self, k) is not None]
        if self.value is not None:
            kinds.append("value")
        if len(kinds) != 1:
            raise ValueError("give exactly one of values, weights, range, expr, value")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        if self.weights is not None and (
            not self.weights
            or any(w < 0 for w in self.weights.values())
            or sum(self.weights.values()) <= 0
        ):
            raise ValueError("weights must be non-negative with a positive sum")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError("range must be [low, high] with low <= high")
        if self.range is not None and not math.isfinite(self.range[1] - self.range[0]):
            # [0, .inf] or [-1.7e308, 1.7e308] drew infinity for every record
            raise ValueError("range must be finite numbers whose difference is finite too")
        return self

    def refuses(self, value: Any) -> str | None:
        """What a value fixed by the user (``--var``) should be, if ``value`` is not that: a
        range's numbers are compared and computed with, so text there fails records later."""
        if self.range is None:
            return None
        return wanted_number(value, whole=all(isinstance(end, int) for end in self.range))

    def sample(self, rng: random.Random, context: dict[str, Any]) -> Any:
        if self.values is not None:
            return rng.choice(self.values)
        if self.weights is not None:
            keys = list(self.weights)
            choice = rng.choices(keys, weights=[self.weights[k] for k in keys])[0]
            return natural(choice)
        if self.range is not None:
            low, high = self.range
            if isinstance(low, int) and isinstance(high, int):
                return rng.randint(low, high)
            return round(rng.uniform(float(low), float(high)), 3)
        if self.expr is not None:
            return natural(jinja_template(self.expr).render(context).strip())
        return self.value


def wanted_number(value: Any, *, whole: bool) -> str | None:
    """None for a finite number (an integer when ``whole``), else what it should be."""
    wanted = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return wanted
    if not math.isfinite(value) or (whole and not float(value).is_integer()):
        return wanted
    return None


#: What an expression over sampled or fixed values can raise (an undefined name, a number
#: where text was expected, a division by zero...).
_EXPRESSION_ERRORS = (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError)


def _shown(context: dict[str, Any]) -> str:
    values = ", ".join(f"{k}={v!r}" for k, v in context.items())
    return values[:200] or "no other variables"


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json"] = "text"
    #: JSON Schema the parsed output must satisfy (``type: json`` only).
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")

    def grammar(self) -> str | None:
        """The JSON output's shape for backends that decode under a grammar (None: text, or a
        schema the grammar does not follow)."""
        return schema_grammar(self.json_schema) if self.type == "json" else None

    @model_validator(mode="after")
    def _schema_is_valid(self) -> OutputSpec:
        if self.json_schema is not None:
            try:
                compiled(self.json_schema)  # the checks (and regex engine) of users' schemas
            except InvalidParameter as exc:
                raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        return self


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: str = "1"
    description: str = ""
    system: str | None = None
    user: str
    variables: dict[str, Variable] = {}
    output: OutputSpec = OutputSpec()
    defaults: dict[str, Any] = {}
    #: Fields whose values label each record (shown in summaries, used by validation).
    labels: list[str] = []
    source: str = ""

    @model_validator(mode="after")
    def _prompts_compile(self) -> PromptTemplate:
        texts = [("system prompt", self.system), ("user prompt", self.user)]
        texts += [(f"variable {name!r}", v.expr) for name, v in self.variables.items()]
        for where, text in texts:
            if text is None:
                continue
            try:
                check_templates(text)
            except ValueError as exc:
                raise ValueError(f"{where}, {exc}") from None
        self._check_order()
        return self

    def _check_order(self) -> None:
        """An expression reads variables set before it: they are set in the order given (a
        cycle, or a later variable, was "'b' is undefined" at the first render)."""
        names = list(self.variables)
        for position, (name, variable) in enumerate(self.variables.items()):
            if variable.expr is None:
                continue
            read = meta.find_undeclared_variables(JINJA.parse(variable.expr))
            later = sorted(r for r in read if r in names[position:])
            if later:
                raise ValueError(
                    f"variable {name!r} reads {later[0]!r}, which is not set before it: an "
                    "expression reads the variables listed above it"
                )

    def sample_variables(
        self, seed: int, index: int, overrides: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The variables of record ``index`` (``overrides`` fix some of them)."""
        overrides = overrides or {}
        unknown = sorted(set(overrides) - set(self.variables))
        if unknown:
            known = ", ".join(self.variables) or "none"
            raise TemplateError(
                f"template {self.id!r} has no variable {unknown[0]!r} (variables: {known})"
            )
        for name, value in overrides.items():
            wanted = self.variables[name].refuses(value)
            if wanted is not None:
                raise TemplateError(
                    f"template {self.id!r}: variable {name!r} takes {wanted} (got {value!r})"
                )
        rng = random.Random(record_seed(seed, index))
        context: dict[str, Any] = {}
        for name, variable in self.variables.items():
            # Sample even overridden variables so the others stay the same as without --var.
            try:
                sampled = variable.sample(rng, context)
            except _EXPRESSION_ERRORS as exc:  # an expression over a value it cannot take
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                raise TemplateError(
                    f"template {self.id!r}: variable {name!r}: {message} (with {_shown(context)})"
                ) from None
            context[name] = overrides.get(name, sampled)
        return context

    def render(self, variables: dict[str, Any]) -> tuple[str | None, str]:
        """The system and user prompts for these variables."""
        try:
            system = jinja_template(self.system).render(variables) if self.system else None
            user = jinja_template(self.user).render(variables)
        except _EXPRESSION_ERRORS as exc:  # an undefined name, 1/0, a sequence too long...
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise TemplateError(f"template {self.id!r}: {message}") from None
        return (system.strip() if system else None), user.strip()

    def request(
        self, variables: dict[str, Any], params: Any, *, ignore_eos: bool = False
    ) -> GenerationRequest:
        system, user = self.render(variables)
        return GenerationRequest.chat(user, system=system, params=params).model_copy(
            update={"ignore_eos": ignore_eos, "grammar": self.output.grammar()}
        )

    def request_failure(self, exc: Exception) -> dict[str, Any] | None:
        """What the model's error on one record's request makes of that record: None (here)
        lets the error fail the run; a mapping makes the record a failed one, with the mapping
        as its ``data`` and its ``message`` as the record's error (an OpenAI batch's line)."""
        return None

    def parse_output(self, text: str) -> dict[str, Any] | None:
        """The JSON object in ``text`` checked against the schema; None for text templates.

        Raises ``ValueError`` when the output is not valid JSON or breaks the schema.
        """
        if self.output.type != "json":
            return None
        data = extract_json_object(text)
        if self.output.json_schema is None:
            problem = instance_problem(data)
            if problem is not None:
                raise ValueError(problem)
            return data
        error = compiled(self.output.json_schema).first_error(data)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "object"
            raise ValueError(f"schema violation at {where}: {error.message}")
        return data


def record_seed(run_seed: int, index: int) -> int:
    """A 32-bit seed for one record, stable across Python versions and processes."""
    digest = hashlib.sha256(f"{run_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def load_template_file(path: Path) -> PromptTemplate:
    return parse_template(_read_yaml(path), source=str(path))


#: How deep a template or recipe file may nest: a JSON Schema inside it, at most ``MAX_DEPTH``
#: deep itself, sits a few levels down (``columns.x.schema``).
MAX_FILE_DEPTH = MAX_DEPTH + 16
#: Arrays and objects a template or recipe file may hold, its YAML aliases expanded (a 1 KB
#: file of nested aliases is a billion of them).
MAX_FILE_PARTS = 200_000


def _read_yaml(path: Path) -> Any:
    """A template or recipe file's YAML, every string in it valid Unicode (an escaped lone
    surrogate, ``"\\ud800"``, fails every prompt and every write far from the file). Its
    errors name the file only: which of the two it holds is known once it is read."""
    try:
        text = read_small_text(path, lambda why: TemplateError(f"cannot read {path}: {why}"))
        raw = strict_yaml.load(text)  # a key given twice, or a 2024-13-01, is an error
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:  # PyYAML composes nodes recursively
        raise TemplateError(f"{path} is nested too deep to read") from None
    if expanded_size(raw, MAX_FILE_PARTS) is None:
        raise TemplateError(
            f"{path} holds more than {MAX_FILE_PARTS:,} lists and mappings once its YAML "
            "aliases are expanded, or an alias inside itself"
        )
    if deeper_than(raw, MAX_FILE_DEPTH):  # its schemas' own bound is MAX_DEPTH
        raise TemplateError(f"{path} is nested deeper than {MAX_FILE_DEPTH} levels")
    invalid = invalid_text_at(raw)
    if invalid is not None:
        where, problem = invalid
        at = ".".join(str(key) for key in where) or "(root)"
        raise TemplateError(f"{path}: {quoted(at)[1:-1]}: {problem}")
    return raw


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's reason and position on one line, without the file's lines that it quotes
    (they may hold a secret, and the message may reach an API client)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "unreadable YAML"
    reason = exc.problem or exc.context or "syntax error"
    mark = exc.problem_mark or exc.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{reason}{where}"


def parse_template(raw: Any, *, source: str) -> PromptTemplate:
    if not isinstance(raw, dict):
        raise TemplateError(f"template {source} must be a YAML mapping")
    try:
        return PromptTemplate.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise TemplateError(f"template {source}: {first_error(exc, root='template')}") from None


class TemplateLibrary:
    """The catalogue of what a dataset run can name: templates (one prompt per record) and
    recipes (``generation.recipes``), built in or from a user directory (which may override
    built-ins). A YAML file with ``columns`` is a recipe, any other a template."""

    def __init__(
        self, templates: dict[str, PromptTemplate], recipes: dict[str, Recipe] | None = None
    ) -> None:
        self._templates = templates
        self._recipes = dict(recipes or {})

    @classmethod
    def load(cls, user_dir: Path | None = None) -> TemplateLibrary:
        from textnlp.generation.recipes.recipe import is_recipe, parse_recipe

        templates: dict[str, PromptTemplate] = {}
        recipes: dict[str, Recipe] = {}
        for folder in ("templates", "recipes"):
            builtin = resources.files("textnlp") / folder
            for entry in sorted(builtin.iterdir(), key=lambda e: e.name):
                if not entry.name.endswith((".yaml", ".yml")):
                    continue
                raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
                if is_recipe(raw):
                    recipe = parse_recipe(raw, source=str(entry))
                    recipes[recipe.id] = recipe
                else:
                    template = parse_template(raw, source=f"builtin:{entry.name}")
                    templates[template.id] = template
        if clash := sorted(set(templates) & set(recipes)):  # a name must say one thing
            raise TemplateError(f"built-in template and recipe share the id {clash[0]!r}")
        if user_dir is not None:
            if not user_dir.is_dir():
                raise TemplateError(f"template directory {user_dir} does not exist")
            mine: dict[str, Path] = {}
            for path in sorted([*user_dir.glob("*.yaml"), *user_dir.glob("*.yml")]):
                found = load_source_file(path)
                # Two of the user's files with one id: the later one hid the other unsaid.
                if (earlier := mine.setdefault(found.id, path)) != path:
                    raise TemplateError(
                        f"{earlier} and {path} share the id {found.id!r}; give each its own"
                    )
                # A user's file overrides a built-in of either kind with its id.
                templates.pop(found.id, None)
                recipes.pop(found.id, None)
                if isinstance(found, PromptTemplate):
                    templates[found.id] = found
                else:
                    recipes[found.id] = found
        return cls(templates, recipes)

    def ids(self) -> list[str]:
        return sorted(self._templates)

    def all(self) -> list[PromptTemplate]:
        return [self._templates[i] for i in self.ids()]

    def recipes(self) -> list[Recipe]:
        return [self._recipes[i] for i in sorted(self._recipes)]

    def by_id(self, template_id: str) -> PromptTemplate:
        """A catalogue template (built-in or of the templates directory), never a file path:
        the lookup of servers, where a path would read the server's files."""
        try:
            return self._templates[template_id]
        except KeyError:
            known = ", ".join(self.ids())
            raise TemplateNotFound(
                f"unknown template {quoted(template_id)} (known: {known})"
            ) from None

    def get(self, template_id: str) -> PromptTemplate:
        """A catalogue template by id, or else a YAML file by path: the lookup of the CLI and
        the library, on the user's own machine (servers use ``by_id``)."""
        if template_id in self._templates:
            return self._templates[template_id]
        if not _names_file(template_id):
            return self.by_id(template_id)
        found = load_source_file(_source_file(template_id))
        if not isinstance(found, PromptTemplate):
            raise TemplateError(f"{template_id} is a recipe, not a template")
        return found

    def source(self, name: str, *, paths: bool = False) -> PromptTemplate | Recipe:
        """What a dataset run names: a recipe or template of the catalogue, or (``paths``:
        the CLI and the library, on the user's own machine) a YAML file of either."""
        if name in self._recipes:
            return self._recipes[name]
        if name in self._templates:
            return self._templates[name]
        if paths and _names_file(name):
            return load_source_file(_source_file(name))
        known = ", ".join(sorted({*self._templates, *self._recipes}))
        raise TemplateNotFound(f"unknown template or recipe {quoted(name)} (known: {known})")


def _names_file(name: str) -> bool:
    """Whether a template or recipe name given on the user's machine (and no catalogue id) is
    meant as a path, so that a mistyped path is told as a missing file, not an unknown id."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return True
    try:
        return Path(name).exists()
    except (OSError, ValueError):  # a name too long for a path, a NUL: no file of the user's
        return False


def _source_file(name: str) -> Path:
    """The template or recipe file ``name`` names, refused when it is none."""
    path = Path(name)
    if path.is_dir():
        raise TemplateError(f"{name} is a directory, not a template file")
    if not path.exists():
        raise TemplateNotFound(f"no such file: {name}")
    if path.suffix not in {".yaml", ".yml"}:
        raise TemplateError(f"{name} is not a template file: a template or recipe is .yaml or .yml")
    return path


def load_source_file(path: Path) -> PromptTemplate | Recipe:
    """A template or recipe file (a recipe has ``columns``)."""
    from textnlp.generation.recipes.recipe import is_recipe, parse_recipe

    raw = _read_yaml(path)
    if is_recipe(raw):
        return parse_recipe(raw, source=str(path))
    return parse_template(raw, source=str(path))
