"""The playground's form (checked once, whichever route reads it) and the CLI command and API
call that do what it asks, each argument shell-quoted (``shlex.quote``).

Sources are catalogue ids only (``TemplateLibrary.source`` without paths): a console request
never names a file on the server. Variable fields are ``var.<name>``; an empty one is sampled.
The commands follow the form: a template becomes ``textnlp generate --template`` and a call of
``/api/v1/generate/text``; a recipe ``textnlp preview`` / ``generate --recipe`` and a batch job
(the text route takes templates only); a free prompt a ``jobs submit --prompt`` (the CLI has no
one-prompt command) and ``/api/v1/generate/text``. The CLI's ``--seed`` is a run seed (each
record's sampling seed derives from it), the closest the CLI has to the playground's seed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from textnlp.api.console.csrf import CSRF_FIELD
from textnlp.api.schemas import TEMPLATE_ID, GenerateTextRequest, JsonScalar
from textnlp.domain import MAX_SEED, MAX_TOKENS_LIMIT
from textnlp.errors import InvalidParameter, first_error
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.scalars import natural
from textnlp.generation.templates import PromptTemplate, TemplateLibrary
from textnlp.services.generation import DatasetJob
from textnlp.services.text_boundary import TextBoundary

#: The most samples (or preview records) of one playground run: a few, not a dataset.
MAX_SAMPLES = 8
#: Prefix of the variable fields (``var.rating``).
VAR_PREFIX = "var."
#: Where the commands write their dataset.
OUT_FILE = "samples.jsonl"

Source = PromptTemplate | Recipe


class PlaygroundForm(TextBoundary):
    """What the playground asks for; empty fields take their defaults."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=200)
    #: A catalogue template or recipe id; None: the free prompt.
    source: str | None = Field(None, max_length=200, pattern=TEMPLATE_ID)
    prompt: str | None = Field(None, max_length=100_000)
    system: str | None = Field(None, max_length=100_000)
    variables: dict[str, str] = Field(default_factory=dict, max_length=64)
    max_tokens: int = Field(128, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    n: int = Field(1, ge=1, le=MAX_SAMPLES)

    @classmethod
    def parse(
        cls, fields: Iterable[tuple[str, Any]], *, known_only: bool = False
    ) -> PlaygroundForm:
        """The form's (name, value) pairs (a form body or a query string); a bad value raises
        ``InvalidParameter`` naming the field. ``known_only``: other names are left out (a
        page's query string, where a link may carry ``utm_source``), else refused."""
        values: dict[str, Any] = {}
        variables: dict[str, str] = {}
        for name, value in fields:
            if not isinstance(value, str) or name == CSRF_FIELD:
                continue  # an upload is no field of this form; the token is checked apart
            if known_only and not name.startswith(VAR_PREFIX) and name not in cls.model_fields:
                continue
            if name.startswith(VAR_PREFIX):
                if value.strip():
                    variables[name.removeprefix(VAR_PREFIX)] = value.strip()
            elif value.strip():
                values[name] = value
        try:
            return cls.model_validate({**values, "variables": variables})
        except ValidationError as exc:
            raise InvalidParameter(first_error(exc, root="form")) from None

    def typed_variables(self) -> dict[str, JsonScalar]:
        """Values as they read (``4`` a number, ``true`` a boolean), as ``--var`` reads them."""
        return {name: natural(value) for name, value in self.variables.items()}

    def text_request(self) -> GenerateTextRequest:
        """The body of ``/api/v1/generate/text`` for a template or the free prompt."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "n": self.n,
        }
        if self.source is not None:
            body |= {"template": self.source, "variables": self.typed_variables()}
        else:
            body |= {"prompt": self.prompt or "", "system": self.system}
        try:
            return GenerateTextRequest.model_validate(body)
        except ValidationError as exc:
            raise InvalidParameter(first_error(exc, root="form")) from None

    def preview_job(self) -> DatasetJob:
        """A preview of ``n`` records of the chosen source (``GenerationService.preview``)."""
        if self.source is None:
            raise InvalidParameter("a preview needs a template or a recipe", parameter="source")
        return DatasetJob(
            template=self.source,
            count=self.n,
            output=None,
            model=self.model,
            params=self.params(),
            variables=dict(self.typed_variables()),
            seed=self.seed or 0,
        )

    def params(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p}


def find_source(library: TemplateLibrary, source_id: str | None) -> Source | None:
    """The catalogue's template or recipe (None: the free prompt); ``TemplateNotFound``."""
    return None if source_id is None else library.source(source_id)


# The equivalent commands ---------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    label: str
    text: str


def _shell(*groups: list[str]) -> str:
    """Quoted arguments, one option per line (``\\`` continuations), ready to paste."""
    lines = [" ".join(shlex.quote(part) for part in group) for group in groups if group]
    return " \\\n    ".join(lines)


def _options(form: PlaygroundForm, *, seed: bool = True) -> list[list[str]]:
    groups = [["--model", form.model]] if form.model else []
    groups += [["--var", f"{name}={value}"] for name, value in form.variables.items()]
    if seed and form.seed is not None:
        groups.append(["--seed", str(form.seed)])
    return groups


def cli_commands(form: PlaygroundForm, source: Source | None) -> list[Command]:
    params = [
        ["--max-tokens", str(form.max_tokens)],
        ["--temperature", str(form.temperature)],
        ["--top-p", str(form.top_p)],
    ]
    if source is None:
        prompts = [["--prompt", form.prompt or ""]] * form.n
        job_params = [["--param", f"{name}={value}"] for name, value in form.params().items()]
        model = [["--model", form.model]] if form.model else []
        text = _shell(["textnlp", "jobs", "submit"], *prompts, *model, *job_params, ["--wait"])
        return [Command("CLI (a job of these prompts, through the API)", text)]
    count = ["--count", str(form.n)]
    if isinstance(source, Recipe):
        preview = _shell(["textnlp", "preview", source.id], count, *_options(form))
        generate = _shell(
            ["textnlp", "generate", "--recipe", source.id], count, ["--out", OUT_FILE]
        )
        return [
            Command("CLI preview (nothing written)", preview),
            Command("CLI dataset", generate + " \\\n    " + _shell(*_options(form), *params)),
        ]
    text = _shell(
        ["textnlp", "generate", "--template", source.id],
        count,
        ["--out", OUT_FILE],
        *_options(form),
        *params,
    )
    return [Command("CLI", text)]


def api_call(form: PlaygroundForm, source: Source | None, base_url: str) -> Command:
    """A curl call of the API with a bearer token (an API key: the API keys page)."""
    if isinstance(source, Recipe):
        path, label = "/api/v1/generate/batch", "API (a batch job of this recipe)"
        body: dict[str, Any] = {"recipe": source.id, "count": form.n}
        if form.model:
            body["model"] = form.model
        if form.variables:
            body["variables"] = form.typed_variables()
        body |= {"params": form.params(), "seed": form.seed or 0}
    else:
        path, label = "/api/v1/generate/text", "API"
        body = form.text_request().model_dump(exclude_defaults=True, exclude={"stream"})
        # The sampling parameters are spelt out even where they equal the API's defaults.
        body |= form.params()
    data = json.dumps(body, ensure_ascii=False)
    url = base_url.rstrip("/") + path
    text = " \\\n    ".join(
        (
            f"curl -sS -X POST {shlex.quote(url)}",
            '-H "Authorization: Bearer $TEXTNLP_API_TOKEN"',
            "-H 'Content-Type: application/json'",
            f"-d {shlex.quote(data)}",
        )
    )
    return Command(label, text)
