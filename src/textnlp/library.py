"""The Python library API: the same pipeline as ``textnlp generate``, callable from code.

import textnlp
summary = textnlp.generate_dataset("product-review", 100, "reviews.jsonl", seed=7)

A recipe can be built in Python as well as named (the same fields as its YAML)::

    recipe = textnlp.Recipe(id="qa", columns={
        "topic": {"type": "category", "values": ["tea", "coffee"]},
        "question": {"type": "llm-text", "prompt": "Ask a question about {{ topic }}."},
        "facts": {"type": "llm-structured", "prompt": "Facts about {{ topic }}", "schema": Facts},
    })
    textnlp.generate_dataset(recipe, 100, "qa.jsonl")

The embedded model (any llama.cpp model) is loaded by the first call and kept for the next
ones in the process, two models at most; ``textnlp.unload_models()`` frees them
(``services.kept_models``).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import math
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, InstanceOf, ValidationError

from textnlp.config import Settings, load_settings
from textnlp.errors import InvalidInput, InvalidParameter
from textnlp.generation.pipeline import DatasetSummary, OnRecord
from textnlp.generation.writers import home_expanded, output_path
from textnlp.services.text_boundary import valid_unicode

if TYPE_CHECKING:
    from textnlp.generation.recipes.recipe import Recipe
    from textnlp.services.kept_models import KeptModels

P = ParamSpec("P")
T = TypeVar("T")


async def agenerate_dataset(
    template: str | Recipe,
    count: int,
    output: str | Path,
    *,
    model: str | None = None,
    variables: dict[str, Any] | None = None,
    seed: int = 0,
    concurrency: int | None = None,
    resume: bool = False,
    settings: Settings | None = None,
    on_record: OnRecord | None = None,
    max_cost_usd: float | None = None,
    max_candidates: int | None = None,
    rejects: str | Path | None = None,
    **params: Any,
) -> DatasetSummary:
    """Generate ``count`` records from ``template`` (a template's or recipe's id or YAML
    file, or a ``Recipe``) into ``output`` (.jsonl, .csv, .parquet, or a directory for
    ``datasets.load_dataset``).

    For a recipe, ``count`` records pass every filter: at most ``max_candidates`` are tried
    (``CandidatesExhausted`` then, with the accepted ones written), and the rejected ones are
    written to ``rejects`` if given.

    ``params`` are generation parameters (``max_tokens``, ``temperature``, ``top_p``, ``stop``).
    ``max_cost_usd`` caps what the run may spend on a priced model: ``QuotaExceeded`` is raised
    before it would be passed, with the finished records written (``resume=True`` continues).
    The summary's ``cost_usd`` is the run's estimated cost (None without a price).

    A template run whose every record failed writes nothing and raises ``DatasetFailed``
    naming the first failure (some failed: ``summary.failed`` and ``first_failure``).
    """
    from textnlp.bootstrap import Platform
    from textnlp.services.generation import DatasetJob

    _check_arguments(
        template=template,
        count=count,
        output=output,
        model=model,
        variables=variables,
        seed=seed,
        concurrency=concurrency,
        resume=resume,
        settings=settings,
        on_record=on_record,
        max_cost_usd=max_cost_usd,
        max_candidates=max_candidates,
        rejects=rejects,
    )
    job = DatasetJob(
        template=template,
        count=count,
        output=output_path(home_expanded(output)),
        model=model,
        params={k: v for k, v in params.items() if v is not None},
        variables=variables,
        seed=seed,
        concurrency=concurrency,
        resume=resume,
        max_cost_usd=max_cost_usd,
        max_candidates=max_candidates,
        rejects=Path(home_expanded(rejects)) if rejects is not None else None,
    )
    chosen = settings if settings is not None else load_settings()
    async with Platform(chosen, kept_models=_kept_models()) as platform:
        summary = await platform.generation.generate_dataset(job, on_record)
    summary.check_written()  # a template run with no record written is no dataset
    return summary


_kept: KeptModels | None = None
_kept_lock = threading.Lock()


def _kept_models() -> KeptModels:
    """The process's loaded engines, kept between calls (a notebook's second call loads
    nothing); made on first use, closed at exit."""
    global _kept
    with _kept_lock:
        if _kept is None:
            from textnlp.services.kept_models import KeptModels

            _kept = KeptModels()
            atexit.register(_kept.close)
        return _kept


def unload_models() -> None:
    """Close the models the library keeps loaded between calls, freeing their memory (a call
    running now keeps its model until it ends); the next call loads its model again."""
    with _kept_lock:
        kept = _kept
    if kept is not None:
        kept.close()


def _blocking(run: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """``run`` as a blocking call of the same signature (a type checker sees its arguments)."""

    @functools.wraps(run)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # none: the usual case
            return asyncio.run(run(*args, **kwargs))
        name = run.__name__
        raise InvalidInput(
            f"{name.removeprefix('a')} blocks, and this thread runs an event loop (Jupyter, "
            f"an async function): use `await textnlp.{name}(...)` there"
        )

    return blocking


#: Blocking form of ``agenerate_dataset`` (in a running event loop, such as a Jupyter
#: notebook's, ``await textnlp.agenerate_dataset(...)`` instead).
generate_dataset = _blocking(agenerate_dataset)
generate_dataset.__name__ = generate_dataset.__qualname__ = "generate_dataset"
generate_dataset.__doc__ = (
    "Blocking form of ``agenerate_dataset`` (inside a running event loop, a Jupyter "
    "notebook's, ``await textnlp.agenerate_dataset(...)``).\n\n" + (agenerate_dataset.__doc__ or "")
)


def _check_arguments(**arguments: Any) -> None:
    """The arguments' types and bounds, as typer checks the CLI's options: a wrong one is an
    ``InvalidParameter`` naming it, before anything is built (never a ``TypeError`` from inside,
    nor a NaN seed or a half-written file)."""
    try:
        _arguments_model().model_validate(arguments)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0])
        wrong_type = error["type"].endswith("_type") or error["type"] == "is_instance_of"
        if name in _EXPECTED and wrong_type:  # not one of a union's types
            message = f"{name}: expected {_EXPECTED[name]}, not {type(arguments[name]).__name__}"
            raise InvalidParameter(message, parameter=name) from None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidParameter(f"{name}: {message}", parameter=name) from None


#: What the arguments that take one of several types expect, said once.
_EXPECTED = {
    "template": "a template's or recipe's id or YAML file (str), or a textnlp.Recipe",
    "output": "a file name (str or pathlib.Path)",
    "rejects": "a file name (str or pathlib.Path) or None",
    "settings": "a textnlp.config.Settings (from load_settings) or None",
    "on_record": "a function taking each Record, or None",
}


@functools.cache
def _arguments_model() -> type[BaseModel]:
    from textnlp.generation.recipes.recipe import Recipe as RecipeClass  # not at import time

    class Arguments(BaseModel):
        # Strict: "3" is not a count, True not a seed, a dict not a recipe.
        model_config = ConfigDict(strict=True, arbitrary_types_allowed=True)

        template: Annotated[str, Field(min_length=1)] | InstanceOf[Recipe]
        count: int = Field(ge=1)
        output: Annotated[str | Path, AfterValidator(_file_name)]
        model: str | None
        variables: Annotated[dict[str, Any], AfterValidator(_storable_variables)] | None
        seed: int
        concurrency: int | None = Field(ge=1)
        resume: bool
        # Instances: a dict of settings is no Settings (it was passed on as it was).
        settings: InstanceOf[Settings] | None
        on_record: Callable[..., Any] | None
        max_cost_usd: float | None = Field(ge=0, allow_inf_nan=False)
        max_candidates: int | None = Field(ge=1)
        rejects: Annotated[str | Path, AfterValidator(_file_name)] | None

    Arguments.model_rebuild(_types_namespace={"Recipe": RecipeClass})  # a name local to here
    return Arguments


def _storable_variables(variables: dict[str, Any]) -> dict[str, Any]:
    """Variables a record can hold: JSON's values, its text valid Unicode (a lone surrogate
    failed in the cache key's encoder, bytes or an object in the record's serialiser)."""
    for name, value in variables.items():
        problem = _unstorable(name) or _unstorable(value)
        if problem is not None:
            raise ValueError(f"{name[:100]!r} {problem}")
    return variables


def _unstorable(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be a variable's value, or None."""
    if depth > 64:  # also a list that holds itself
        return "is nested too deep"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "holds a number that is not finite"
    if isinstance(value, str):
        return None if valid_unicode(value) else "holds text that is not valid Unicode"
    if isinstance(value, list | tuple):
        return next((p for v in value if (p := _unstorable(v, depth + 1))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"holds a mapping key of type {type(key).__name__}, not str"
            if problem := _unstorable(key, depth + 1) or _unstorable(item, depth + 1):
                return problem
        return None
    return (
        f"holds a {type(value).__name__}: a variable is text, a number, a bool, None, "
        "or a list or dict of them"
    )


def _file_name(path: str | Path) -> str | Path:
    text = str(path)
    if not text or "\x00" in text:
        raise ValueError("not a file name")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise ValueError("not a file name this system can store") from None
    return path
