"""One recipe record, cell by cell: the columns in dependency order, independent llm columns
at the same time, filters as soon as what they read is ready.

Cheap cells (samplers, expressions, filters) are computed inline, in the recipe's order, the
moment their dependencies are; llm cells run as tasks, so a record's independent llm columns
decode together. A filter that says no stops the record: llm cells not started yet never
are, those in flight are cancelled. A cell whose output never parses fails the record, not
the run.

Each llm cell's request carries a seed from (run seed, record index, column), so the response
cache (``generation.cache``) keys it by everything it depends on: its rendered prompt (the
values of the columns it reads), model, parameters and seed. Editing a later column re-runs
only that column and what reads it.
"""

from __future__ import annotations

import asyncio
import graphlib
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2

from textnlp.backends.base import Backend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import (
    CellProvenance,
    Completion,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Provenance,
    Record,
)
from textnlp.errors import InvalidParameter, RecipeError, first_error
from textnlp.generation.recipes.base import CellContext, cell_seed
from textnlp.generation.recipes.columns import (
    Dialogue,
    Expression,
    LlmJudge,
    RenderFailed,
    _LlmColumn,
    as_text,
    render,
)
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.recipes.samplers import wanted_instead
from textnlp.generation.templates import record_seed

#: The catalogue entry of a model id (``ModelNotFound`` for an unknown one).
SpecOf = Callable[[str], ModelSpec]
#: The (loaded, cached, capped) backend of a model id.
BackendOf = Callable[[str], Awaitable[Backend]]


class CellFailed(Exception):
    """A cell that could not be made (its reason becomes the record's error). ``cell``: the
    tokens and cost of the model calls it made before it failed, which were paid for and are
    counted in the record like a made cell's."""

    def __init__(self, message: str, cell: CellProvenance | None = None) -> None:
        super().__init__(message)
        self.cell = cell


#: What no value of a scalar kind has, whichever value a record samples.
_NO_SUCH_ATTRIBUTE = re.compile(r"'(str|int|float|bool) object' has no attribute ")


class _AnyAnswer:
    """A model's answer before there is one: every attribute, key and item is another."""

    def __getattr__(self, name: str) -> _AnyAnswer:
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> _AnyAnswer:
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __str__(self) -> str:
        return ""


@dataclass(frozen=True)
class _Call:
    model: str
    params: GenerationParams


class RecordBuilder:
    """Builds the records of one recipe run: ``plan`` checks, ``build(index)`` makes one."""

    def __init__(
        self,
        recipe: Recipe,
        *,
        run_model: str,
        run_params: dict[str, Any],
        seed: int,
        spec_of: SpecOf,
        backend_of: BackendOf,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self.recipe = recipe
        self.seed = seed
        #: Values given by the user for some sampler or expression columns (``--var``).
        self.fixed = dict(fixed or {})
        for name in self.fixed:
            column = recipe.columns.get(name)
            if column is None or name in recipe.generated() or name in recipe.filters():
                cheap = [
                    n for n in recipe.columns if n not in recipe.generated() + recipe.filters()
                ]
                raise RecipeError(
                    f"recipe {recipe.id!r} has no sampler or expression column {name!r} "
                    f"(those: {', '.join(cheap) or 'none'})"
                )
            wanted = wanted_instead(column, self.fixed[name])
            if wanted is not None:
                raise RecipeError(
                    f"recipe {recipe.id!r}: column {name!r} takes {wanted} "
                    f"(got {self.fixed[name]!r})"
                )
        self.run_model = run_model
        self.backend_of = backend_of
        self._order = recipe.order()
        self._graph = recipe.graph()
        self._calls = self._plan(run_params, spec_of)

    def _plan(self, run_params: dict[str, Any], spec_of: SpecOf) -> dict[str, _Call]:
        """Each llm call's model and parameters, checked before any model runs."""
        calls: dict[str, _Call] = {}
        for key, model in self.recipe.llm_models(self.run_model).items():
            name, _, role = key.partition(".")
            column = self.recipe.columns[name]
            if isinstance(column, Dialogue):
                own = column.roles["user" if role == "user" else "assistant"].params
            else:
                own = getattr(column, "params", {})
            merged = {**self.recipe.defaults, **run_params, **own}
            spec = spec_of(model)
            try:
                params = spec.params(merged)
            except ValueError as exc:
                raise InvalidParameter(f"column {name!r}: {first_error(exc)}") from None  # type: ignore[arg-type]
            if params.max_tokens >= spec.context_length:
                raise InvalidParameter(
                    f"column {name!r}: max_tokens {params.max_tokens} does not fit the "
                    f"context of {spec.id} ({spec.context_length} tokens)"
                )
            calls[key] = _Call(model, params)
        return calls

    @property
    def output_call(self) -> _Call | None:
        name = self.recipe.output_column()
        return self._calls.get(name) or self._calls.get(f"{name}.assistant")

    # -- one record ------------------------------------------------------------------------------
    async def build(self, index: int) -> Record:
        row: dict[str, Any] = {}
        cells: dict[str, CellProvenance] = {}
        sorter = graphlib.TopologicalSorter(self._graph)
        sorter.prepare()
        running: dict[asyncio.Task[tuple[Any, CellProvenance]], str] = {}
        problem: tuple[str, str] | None = None  # (status, reason)
        try:
            while sorter.is_active() and problem is None:
                ready = sorted(sorter.get_ready(), key=self._order.index)
                computed = False
                for name in ready:
                    column = self.recipe.columns[name]
                    if isinstance(column, _LlmColumn | Dialogue):
                        task = asyncio.create_task(self._llm_cell(name, index, row))
                        running[task] = name
                        continue
                    problem = self._cheap_cell(name, index, row, cells)
                    if problem is not None:
                        break
                    sorter.done(name)
                    computed = True
                # A cheap cell done may have readied others (a filter): they run before any
                # wait, so a rejection cancels llm cells before they have called a model.
                if problem is not None or not running or computed:
                    continue
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: self._order.index(running[t])):
                    name = running.pop(task)
                    try:
                        row[name], cells[name] = task.result()
                    except CellFailed as exc:
                        problem = problem or ("failed", f"column {name}: {exc}")
                        if exc.cell is not None:
                            cells[name] = exc.cell
                        continue
                    sorter.done(name)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        return self._record(index, row, cells, problem)

    def _cheap_cell(
        self, name: str, index: int, row: dict[str, Any], cells: dict[str, CellProvenance]
    ) -> tuple[str, str] | None:
        column = self.recipe.columns[name]
        if getattr(column, "type", "") == "filter":
            finish = {cell: made.finish_reason for cell, made in cells.items()}
            reason = column.verdict(row, finish)  # type: ignore[union-attr]
            row[name] = reason is None
            return None if reason is None else ("rejected", f"{name}: {reason}")
        if name in self.fixed:
            row[name] = self.fixed[name]
            return None
        failure = self._compute(name, index, row)
        return None if failure is None else ("failed", failure)

    def _compute(self, name: str, index: int, row: dict[str, Any]) -> str | None:
        """A sampler's or expression's value into ``row``; else why it has none."""
        column = self.recipe.columns[name]
        try:
            if isinstance(column, Expression):
                row[name] = column.evaluate(row)
            else:
                ctx = CellContext(
                    seed=self.seed, index=index, column=name, row=row, base_dir=self.recipe.base_dir
                )
                row[name] = column.sample(ctx)  # type: ignore[union-attr]
        except jinja2.UndefinedError as exc:
            return f"column {name}: {exc.message}"
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            # an expression over a value it cannot take: this candidate fails, not the run
            return f"column {name}: {exc}"
        return None

    def check_fixed(self) -> None:
        """Refuse, before any model runs, ``--var`` values that the recipe's expressions cannot
        take: record 0's sampler and expression columns are computed with the fixed values and
        without, and a failure only with them is the values' (each candidate would fail on it)."""
        if not self.fixed:
            return
        failure = self._cheap_failure(self.fixed)
        if failure is not None and self._cheap_failure({}) is None:
            given = ", ".join(f"{k}={v!r}" for k, v in self.fixed.items())
            raise InvalidParameter(f"--var {given}: {failure}")

    def check_prompts(self) -> None:
        """Refuse, before any model runs, a prompt that asks a value for an attribute no value
        of its kind has (``{{ topic.nosuch }}`` over a category's text): each prompt rendered
        over record 0's values, every model answer a stand-in that has everything. Only such
        errors refuse: a dict's missing key may be another record's, and the rest is the
        run's to find."""
        row, failure = self._cheap_row(0, self.fixed)
        if failure is not None:
            return  # check_fixed names it, or every candidate will
        values = {name: _AnyAnswer() for name in self.recipe.generated()} | row
        for name in self._order:
            column = self.recipe.columns[name]
            if not isinstance(column, _LlmColumn | Dialogue):
                continue
            for text in column.texts():
                if text is None:
                    continue
                try:
                    render(text, values)
                except jinja2.UndefinedError as exc:
                    message = exc.message or ""
                    if _NO_SUCH_ATTRIBUTE.match(message):
                        raise RecipeError(
                            f"recipe {self.recipe.id!r}: column {name!r}: {message}"
                        ) from None
                except Exception:  # noqa: BLE001, S112 - only the error above is certain here
                    continue

    def _cheap_failure(self, fixed: dict[str, Any]) -> str | None:
        """The first failure among record 0's columns that need no model, given ``fixed``."""
        return self._cheap_row(0, fixed)[1]

    def _cheap_row(self, index: int, fixed: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Record ``index``'s values of the columns that need no model, given ``fixed``, up to
        the first failure (and that failure, or None)."""
        row: dict[str, Any] = {}
        for name in self._order:
            column = self.recipe.columns[name]
            if getattr(column, "type", "") == "filter" or isinstance(column, _LlmColumn | Dialogue):
                continue
            if not self._graph[name] <= row.keys():
                continue  # it reads a model's answer
            if name in fixed:
                row[name] = fixed[name]
                continue
            failure = self._compute(name, index, row)
            if failure is not None:
                return row, failure
        return row, None

    def difference(self, record: Record) -> str | None:
        """How a committed candidate differs from what this run would make at its index: a
        value of a column that needs no model (a ``--var`` given, changed or dropped), or the
        model or parameters of an llm cell; None when it is this run's."""
        expected, _ = self._cheap_row(record.index, self.fixed)
        for name, value in expected.items():
            # str(): a CSV or Parquet file gives variables back as text.
            if name in record.variables and str(record.variables[name]) != str(value):
                return f"has {name}={record.variables[name]!r}, not {value!r}"
        for name, made in (record.provenance.cells or {}).items():
            call = self._cell_call(name)
            if call is None:
                continue
            if made.model != call.model:
                return f"has column {name!r} made by model {made.model!r}, not {call.model!r}"
            was = made.params.model_dump(exclude={"seed"})
            now = call.params.model_dump(exclude={"seed"})
            changed = [key for key in now if was.get(key) != now[key]]
            if changed:
                before = ", ".join(f"{key} {was.get(key)!r}" for key in changed)
                after = ", ".join(f"{key} {now[key]!r}" for key in changed)
                return f"has column {name!r} made with {before}, not {after}"
        return None

    def _cell_call(self, name: str) -> _Call | None:
        """The call whose model and parameters an llm cell's provenance records (a
        dialogue's: its last speaker's)."""
        column = self.recipe.columns.get(name)
        if isinstance(column, Dialogue):
            return self._calls.get(f"{name}.{column.speaker(column.turns - 1)}")
        return self._calls.get(name)

    async def _llm_cell(
        self, name: str, index: int, row: dict[str, Any]
    ) -> tuple[Any, CellProvenance]:
        column = self.recipe.columns[name]
        snapshot = dict(row)  # later cells must not change what this one renders
        try:
            if isinstance(column, Dialogue):
                return await self._dialogue(name, column, index, snapshot)
            if isinstance(column, LlmJudge):
                return await self._judge(name, column, index, snapshot)
            assert isinstance(column, _LlmColumn)
            return await self._ask(name, column, index, snapshot)
        except jinja2.UndefinedError as exc:
            raise CellFailed(exc.message or "undefined value") from None
        except RenderFailed as exc:  # this candidate's values: it fails, not the run
            raise CellFailed(f"its prompt cannot be rendered: {exc}") from None

    async def _ask(
        self, name: str, column: _LlmColumn, index: int, row: dict[str, Any]
    ) -> tuple[Any, CellProvenance]:
        call = self._calls[name]
        backend = await self.backend_of(call.model)
        seed = cell_seed(self.seed, index, name)
        tally = _Usage()
        error = "no attempt"
        for attempt in range(column.retries + 1):
            params = call.params.model_copy(update={"seed": (seed + attempt) % 2**32})
            completion = await backend.generate_one(column.request(row, params))
            tally.add(completion)
            try:
                value = column.parse(completion.text)
            except ValueError as exc:
                error = f"invalid output after {attempt + 1} attempts: {exc}"
                continue
            return value, tally.cell(call, seed, attempt + 1)
        raise CellFailed(error, tally.cell(call, seed, column.retries + 1))

    async def _judge(
        self, name: str, column: LlmJudge, index: int, row: dict[str, Any]
    ) -> tuple[Any, CellProvenance]:
        """Every criterion at once, each with its own seed and attempts."""
        call = self._calls[name]
        backend = await self.backend_of(call.model)
        seed = cell_seed(self.seed, index, name)
        tally = _Usage()
        attempts = 0

        async def score(criterion: str) -> dict[str, Any]:
            nonlocal attempts
            grammar = column.criterion_grammar(criterion) if backend.grammars else None
            messages = column.criterion_messages(criterion, row, constrained=grammar is not None)
            base = cell_seed(self.seed, index, f"{name}.{criterion}")
            error = ""
            for attempt in range(column.retries + 1):
                params = call.params.model_copy(update={"seed": (base + attempt) % 2**32})
                completion = await backend.generate_one(
                    GenerationRequest(
                        messages=messages, params=params, grammar=grammar, keep_prompt=True
                    )
                )
                tally.add(completion)
                attempts = max(attempts, attempt + 1)
                try:
                    return column.parse_score(criterion, completion.text)
                except ValueError as exc:
                    error = f"invalid output after {attempt + 1} attempts: {exc}"
            raise CellFailed(error)

        tasks = [asyncio.create_task(score(c)) for c in column.rubric]
        try:
            scores = await asyncio.gather(*tasks)
        except BaseException as exc:  # one criterion failed: the others' answers are not needed
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(exc, CellFailed):
                raise CellFailed(str(exc), tally.cell(call, seed, attempts)) from None
            raise
        return dict(zip(column.rubric, scores, strict=True)), tally.cell(call, seed, attempts)

    async def _dialogue(
        self, name: str, column: Dialogue, index: int, row: dict[str, Any]
    ) -> tuple[Any, CellProvenance]:
        history: list[dict[str, str]] = []
        tally = _Usage()
        seed = cell_seed(self.seed, index, name)
        call = self._calls[f"{name}.assistant"]
        for turn in range(column.turns):
            speaker = column.speaker(turn)
            call = self._calls[f"{name}.{speaker}"]
            backend = await self.backend_of(call.model)
            params = call.params.model_copy(
                update={"seed": cell_seed(self.seed, index, f"{name}#{turn}")}
            )
            completion = await backend.generate_one(
                GenerationRequest(
                    messages=column.messages(turn, history, row), params=params, keep_prompt=True
                )
            )
            tally.add(completion)
            text = completion.text.strip()
            if not text:
                raise CellFailed(
                    f"turn {turn + 1} ({speaker}) is empty", tally.cell(call, seed, turn + 1)
                )
            history.append({"role": speaker, "content": text})
        return history, tally.cell(call, seed, column.turns)

    # -- the record ------------------------------------------------------------------------------
    def _record(
        self,
        index: int,
        row: dict[str, Any],
        cells: dict[str, CellProvenance],
        problem: tuple[str, str] | None,
    ) -> Record:
        generated = set(self.recipe.generated())
        filters = set(self.recipe.filters())
        variables = {k: v for k, v in row.items() if k not in generated and k not in filters}
        data = {k: row[k] for k in self.recipe.generated() if k in row}
        output = self.recipe.output_column()
        call = self.output_call or _Call(self.run_model, GenerationParams())
        costs = [c.cost_usd for c in cells.values() if c.cost_usd is not None]
        seed = record_seed(self.seed, index)
        return Record(
            index=index,
            status="ok" if problem is None else problem[0],
            text=as_text(row[output]) if output in row else "",
            data=data,
            variables=variables,
            error=None if problem is None else problem[1],
            provenance=Provenance(
                template_id=self.recipe.id,
                template_version=self.recipe.version,
                model=call.model,
                params=call.params.model_copy(update={"seed": seed}),
                seed=seed,
                prompt_tokens=sum(c.prompt_tokens for c in cells.values()),
                completion_tokens=sum(c.completion_tokens for c in cells.values()),
                finish_reason=cells[output].finish_reason if output in cells else "stop",
                latency_s=round(sum(c.latency_s for c in cells.values()), 4),
                attempts=max((c.attempts for c in cells.values()), default=1),
                cached=bool(cells) and all(c.cached for c in cells.values()),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                cost_usd=round(sum(costs), 8) if costs else None,
                cells=cells,
            ),
        )


class _Usage:
    """Tokens, time and cost of a cell's calls (every attempt, every turn)."""

    def __init__(self) -> None:
        self.prompt = self.completion = 0
        self.latency = 0.0
        self.costs: list[float] = []
        self.cached = True
        self.finish_reason: FinishReason = "stop"

    def add(self, completion: Completion) -> None:
        self.prompt += completion.usage.prompt_tokens
        self.completion += completion.usage.completion_tokens
        self.latency += completion.latency_s
        self.cached = self.cached and completion.cached
        self.finish_reason = completion.finish_reason
        if completion.usage.cost_usd is not None:
            self.costs.append(completion.usage.cost_usd)

    def cell(self, call: _Call, seed: int, attempts: int) -> CellProvenance:
        return CellProvenance(
            model=call.model,
            params=call.params.model_copy(update={"seed": seed}),
            seed=seed,
            prompt_tokens=self.prompt,
            completion_tokens=self.completion,
            latency_s=round(self.latency, 4),
            attempts=attempts,
            cached=self.cached,
            cost_usd=round(sum(self.costs), 8) if self.costs else None,
            finish_reason=self.finish_reason,
        )
