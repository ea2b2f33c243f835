"""The dataset pipeline: template -> sampled prompts -> model (concurrent) -> records -> file.

Concurrency is what lets a batching engine decode many records together: ``concurrency``
workers keep that many requests in flight. Each finished record goes to the run's sink at once
(``generation.sinks``: by default a journal beside the output file, which is written atomically
from the journal at the end, or when the run is interrupted, so Ctrl-C leaves a valid file and
``resume`` continues where the run stopped; the run holds the output's lock, so a second run on
it is refused; a job's sink is the job store).

Cost: each record's provenance carries the estimated cost of its attempts (``cost_usd``; None
when the model has no price, 0 for an answer from the cache) and the summary sums this run's
records. A spending cap (``CappedBackend``, applied by the caller) that refuses a request stops
the run like an interruption: no new record starts, the ones in flight finish, the sink ends
the run with them (the file is written, the journal stays for ``resume``), and the
``QuotaExceeded`` is raised with ``written`` and ``requested`` added to its details.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from textnlp.backends.base import Backend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationParams, Provenance, Record
from textnlp.errors import DatasetFailed, InvalidParameter, QuotaExceeded, first_error
from textnlp.generation.cache import CachedBackend, ResponseCache
from textnlp.generation.journal import RunIdentity, check_resume, journal_path
from textnlp.generation.output_lock import lock_path
from textnlp.generation.recipes.cells import BackendOf, RecordBuilder, SpecOf
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.recipes.run import RecipeRun
from textnlp.generation.seed_guard import check_not_a_seed
from textnlp.generation.sinks import FileSink, RecordSink
from textnlp.generation.templates import PromptTemplate, record_seed
from textnlp.generation.writers import check_writable, same_file

OnRecord = Callable[[Record], None]


@dataclass(frozen=True)
class DatasetRequest:
    """What to generate. ``params`` holds only the parameters the user set."""

    #: A template (one prompt per record) or a recipe (a DAG of columns).
    template: PromptTemplate | Recipe
    count: int
    #: The dataset file of a run into a ``FileSink`` (None: the caller passes its own sink).
    output: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    concurrency: int = 32
    resume: bool = False
    #: Extra attempts for JSON outputs that do not parse or match the schema.
    json_retries: int = 2
    #: A recipe run's most candidates (None: ``CANDIDATES_PER_RECORD`` per record asked).
    max_candidates: int | None = None
    #: A file for a recipe run's rejected and failed candidates, with their reasons.
    rejects: Path | None = None

    @property
    def candidates(self) -> int:
        return self.max_candidates or CANDIDATES_PER_RECORD * self.count


#: A recipe run tries at most this many candidates per record asked, unless told otherwise.
CANDIDATES_PER_RECORD = 4


@dataclass
class DatasetSummary:
    output: Path | None
    model: str
    template: str
    requested: int
    #: Records in the dataset. A template run's ``written + failed`` are its finished indices
    #: (``requested`` once complete), resumed ones included; a recipe's ``failed`` counts
    #: candidates.
    written: int = 0
    failed: int = 0
    #: Of ``written``, the records taken over from the run resumed (its failed records and a
    #: recipe's rejected candidates are counted in ``failed`` and ``acceptance``, not here).
    resumed: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Completion tokens a model made in this run (not read back from the response cache).
    generated_tokens: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Estimated cost in US dollars of this run's records; None when none had a price.
    cost_usd: float | None = None
    #: A recipe run's candidates, rejections per filter and acceptance rates (``Acceptance``).
    acceptance: dict[str, Any] | None = None
    #: A template run's failed record of the lowest index, and why it failed (its output did
    #: not parse or meet the schema, its prompt was over the context...).
    first_failure: tuple[int, str] | None = None

    @property
    def tokens_per_s(self) -> float:
        """The model's speed in this run: cached answers are not tokens it made."""
        return self.generated_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def check_written(self) -> None:
        """``DatasetFailed`` when a template run ended with every record failed, nothing written
        (a recipe's candidates that all fail end in ``CandidatesExhausted`` instead): the CLI
        exits 1 on it and the library raises it, as a job so ended is ``failed``."""
        if self.first_failure is None or self.acceptance is not None:
            return
        if self.written or self.interrupted:
            return
        index, reason = self.first_failure
        message = f"every record failed ({self.failed}); the first, record {index}: {reason}"
        if self.output is not None:  # nothing is written: an earlier file stays as it was
            kept = " (it is unchanged)" if self.output.exists() else ""
            message += f"; {self.output} was not written{kept}"
        raise DatasetFailed(message, failed=self.failed, requested=self.requested)


class DatasetPipeline:
    """Generates datasets with one loaded backend and an optional response cache."""

    def __init__(
        self,
        backend: Backend,
        cache: ResponseCache | None = None,
        *,
        spec_of: SpecOf | None = None,
        backend_of: BackendOf | None = None,
    ) -> None:
        """``backend`` is the run's model; a recipe's columns naming other models get theirs
        from ``backend_of`` (and their catalogue entries from ``spec_of``)."""
        self.backend = CachedBackend(backend, cache) if cache is not None else backend
        self.cache = cache
        self._spec_of = spec_of
        self._backend_of = backend_of
        self._others: dict[str, Backend] = {}

    def spec_of(self, model_id: str) -> ModelSpec:
        if model_id == self.backend.spec.id:
            return self.backend.spec
        if self._spec_of is None:
            raise InvalidParameter(
                f"this run has only model {self.backend.spec.id!r}, not {model_id!r}"
            )
        return self._spec_of(model_id)

    async def backend_of(self, model_id: str) -> Backend:
        if model_id == self.backend.spec.id:
            return self.backend
        if self._backend_of is None:
            raise InvalidParameter(
                f"this run has only model {self.backend.spec.id!r}, not {model_id!r}"
            )
        if model_id not in self._others:  # one wrapper per model (a budget's caps, the cache)
            backend = await self._backend_of(model_id)
            self._others[model_id] = (
                CachedBackend(backend, self.cache) if self.cache is not None else backend
            )
        return self._others[model_id]

    @classmethod
    def resolve(
        cls, spec: ModelSpec, request: DatasetRequest, spec_of: SpecOf | None = None
    ) -> GenerationParams:
        """The checks that need neither a model nor a file: count, parameters, variables
        (``request.output`` is not looked at). Returns the parameters: model defaults, then
        template defaults, then the user's values."""
        if request.count < 1:
            raise InvalidParameter(f"count must be at least 1 (got {request.count})")
        if request.max_candidates is not None and not isinstance(request.template, Recipe):
            raise InvalidParameter(
                "max_candidates (--max-candidates) applies to recipes: a template's records "
                "pass no filters"
            )
        if isinstance(request.template, Recipe):
            builder = _recipe_builder(spec, request, spec_of or _only(spec), _no_backend)
            call = builder.output_call
            # No model writing the output: the parameters are still checked, as a template's.
            return call.params if call is not None else _params(spec, request.params)
        params = _params(spec, {**request.template.defaults, **request.params})
        if params.max_tokens >= spec.context_length:
            raise InvalidParameter(
                f"max_tokens {params.max_tokens} does not fit the context of "
                f"{spec.id} ({spec.context_length} tokens)"
            )
        # Record 0's prompt, rendered: an undefined variable fails here, not in every worker.
        request.template.render(
            request.template.sample_variables(request.seed, 0, request.variables)
        )
        return params

    @classmethod
    def precheck(
        cls, spec: ModelSpec, request: DatasetRequest, spec_of: SpecOf | None = None
    ) -> GenerationParams:
        """``resolve``, and the output file can be written: every check that needs no model."""
        params = cls.resolve(spec, request, spec_of)
        if request.output is not None:
            check_writable(request.output)
        if request.rejects is not None:
            if not isinstance(request.template, Recipe):
                raise InvalidParameter("--rejects applies to recipes: a template has no filters")
            check_writable(request.rejects)
            if request.output is not None:
                for kept, name in ((request.output, "output file"),
                                   (journal_path(request.output), "run's journal"),
                                   (lock_path(request.output), "output's lock file")):  # fmt: skip
                    if same_file(request.rejects, kept):  # written over, or removed at the end
                        raise InvalidParameter(f"the rejects file must not be the {name}")
        if isinstance(request.template, Recipe):
            check_not_a_seed(request.template, output=request.output, rejects=request.rejects)
        return params

    async def run(
        self,
        request: DatasetRequest,
        on_record: OnRecord | None = None,
        *,
        sink: RecordSink | None = None,
        on_end: Callable[[DatasetSummary], None] | None = None,
    ) -> DatasetSummary:
        """Generate ``request``'s records into ``sink`` (default: a ``FileSink`` on
        ``request.output``); ``on_end`` sees the summary once the records are written, also
        when a budget stopped the run."""
        if sink is not None:
            return await self._run_into(request, on_record, sink, on_end)
        self.precheck(self.backend.spec, request, self.spec_of)
        with file_sink(request) as own:  # locked before the journal is read
            return await self._run_into(request, on_record, own, on_end)

    async def _run_into(
        self,
        request: DatasetRequest,
        on_record: OnRecord | None,
        sink: RecordSink,
        on_end: Callable[[DatasetSummary], None] | None,
    ) -> DatasetSummary:
        if isinstance(request.template, Recipe):
            return await self._run_recipe(request, on_record, sink, on_end)
        return await self._run_template(request, on_record, sink, on_end)

    async def _run_template(
        self,
        request: DatasetRequest,
        on_record: OnRecord | None,
        sink: RecordSink,
        on_end: Callable[[DatasetSummary], None] | None,
    ) -> DatasetSummary:
        params = self.resolve(self.backend.spec, request)
        summary = DatasetSummary(
            output=request.output,
            model=self.backend.spec.id,
            template=request.template.id,
            requested=request.count,
        )
        tally = _Tally(request.template.labels, summary)
        done = self._previous_records(request, params, sink, tally)  # indices below count only
        todo = (i for i in range(request.count) if i not in done)
        started = time.perf_counter()
        sink.start(fresh=not request.resume)
        try:
            refused = await self._run_workers(request, params, todo, sink, tally, on_record)
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Ctrl-C: what is done becomes a valid dataset; the progress stays for --resume.
            summary.interrupted = True
            self._finish(request, sink, tally, started)
            raise
        except BaseException:
            # A failure leaves the output as it was; the sink keeps the progress.
            sink.abort()
            raise
        self._finish(request, sink, tally, started)
        if on_end is not None:
            on_end(summary)
        if refused is not None:
            # A spending cap stopped the run: the finished records are written, and kept.
            raise QuotaExceeded(
                refused.message,
                retry_after=refused.retry_after,
                **{**refused.details, "written": summary.written, "requested": request.count},
            ) from refused
        return summary

    async def _run_recipe(
        self,
        request: DatasetRequest,
        on_record: OnRecord | None,
        sink: RecordSink,
        on_end: Callable[[DatasetSummary], None] | None,
    ) -> DatasetSummary:
        """Candidates until ``count`` pass every filter (``recipes.run``)."""
        recipe = request.template
        assert isinstance(recipe, Recipe)
        spec = self.backend.spec
        builder = _recipe_builder(spec, request, self.spec_of, self.backend_of)
        summary = DatasetSummary(
            output=request.output, model=spec.id, template=recipe.id, requested=request.count
        )
        tally = _Tally(recipe.labels, summary)

        def committed(record: Record) -> None:
            tally.add(record)
            if on_record is not None:
                on_record(record)

        run = RecipeRun(
            recipe,
            builder,
            sink,
            count=request.count,
            max_candidates=request.candidates,
            concurrency=request.concurrency,
            on_record=committed,
        )
        # Refuses another recipe's or seed's records before anything is kept.
        run.replay(sink.finished() if request.resume else (), keep=tally.resumed)
        started = time.perf_counter()
        sink.start(fresh=not request.resume)
        stopped: QuotaExceeded | None = None
        try:
            await run.run()
        except QuotaExceeded as exc:  # a spending cap or the candidate budget
            stopped = exc
        except (asyncio.CancelledError, KeyboardInterrupt):
            summary.interrupted = True
            self._end_recipe(request, sink, tally, run, started, complete=False)
            raise
        except BaseException:
            sink.abort()
            raise
        self._end_recipe(request, sink, tally, run, started, complete=stopped is None)
        if on_end is not None:
            on_end(summary)
        if stopped is not None:
            raise stopped.__class__(
                stopped.message,
                retry_after=stopped.retry_after,
                **{**stopped.details, "written": summary.written, "requested": request.count},
            ) from stopped
        return summary

    def _end_recipe(
        self,
        request: DatasetRequest,
        sink: RecordSink,
        tally: _Tally,
        run: RecipeRun,
        started: float,
        *,
        complete: bool,
    ) -> None:
        summary = tally.summary
        summary.elapsed_s = time.perf_counter() - started
        summary.written = min(run.acceptance.accepted, request.count)
        summary.failed = run.acceptance.failed
        summary.acceptance = run.acceptance.as_dict(run.recipe.filters())
        sink.end(request.count, complete=complete and not summary.interrupted)
        summary.label_counts = tally.label_counts()

    def _previous_records(
        self, request: DatasetRequest, params: GenerationParams, sink: RecordSink, tally: _Tally
    ) -> set[int]:
        """The indices of the finished records a resume continues from, counted in ``tally``,
        once they are known to be of this run (``check_resume``); nothing is written before
        that check."""
        if not request.resume:
            return set()
        template = request.template
        assert isinstance(template, PromptTemplate)  # a recipe's run replays its own
        done = sink.finished()
        run = RunIdentity(
            template_id=request.template.id,
            template_version=request.template.version,
            model=self.backend.spec.id,
            params=params,
            seed=request.seed,
            count=request.count,
            fixed=request.variables,
            variables_of=lambda index: template.sample_variables(
                request.seed, index, request.variables
            ),
        )
        return check_resume(done, run, sink.source, keep=tally.resumed)

    async def _run_workers(
        self,
        request: DatasetRequest,
        params: GenerationParams,
        todo: Iterator[int],
        sink: RecordSink,
        tally: _Tally,
        on_record: OnRecord | None,
    ) -> QuotaExceeded | None:
        """Run the records; the first spending-cap refusal, which stops new records."""
        refused: list[QuotaExceeded] = []

        async def worker() -> None:
            for index in todo:  # a shared iterator: each index goes to exactly one worker
                if refused:
                    return
                try:
                    record = await self._record(request, params, index)
                except QuotaExceeded as exc:
                    refused.append(exc)
                    return
                sink.append(record)
                tally.add(record)
                if on_record is not None:
                    on_record(record)

        workers = max(1, min(request.concurrency, request.count))
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
        except BaseExceptionGroup as group:
            # One failure (a template error of one record...) is raised as itself, so callers
            # map it like any other; several stay a group.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        return refused[0] if refused else None

    async def _record(
        self, request: DatasetRequest, params: GenerationParams, index: int
    ) -> Record:
        template = request.template
        assert isinstance(template, PromptTemplate)  # a recipe runs in ``_run_recipe``
        variables = template.sample_variables(request.seed, index, request.variables)
        seed = record_seed(request.seed, index)
        attempts = 1 + (request.json_retries if template.output.type == "json" else 0)
        error: str | None = None
        data: dict[str, Any] | None = None
        completion: Completion | None = None
        costs: list[float] = []
        prompt_tokens = completion_tokens = 0  # of every attempt, as its cost is
        attempt = 0
        for attempt in range(1, attempts + 1):  # noqa: B007 - attempt is reported below
            attempt_params = params.model_copy(update={"seed": (seed + attempt - 1) % 2**32})
            generation_request = template.request(variables, attempt_params)
            try:
                completion = await self.backend.generate_one(generation_request)
            except Exception as exc:
                failure = template.request_failure(exc)
                if failure is None:
                    raise
                # The template keeps this error as the record's (one line of a batch).
                completion = Completion(text="", finish_reason="error", model=self.backend.spec.id)
                data, error = failure, str(failure.get("message") or exc or type(exc).__name__)
                break
            if completion.usage.cost_usd is not None:
                costs.append(completion.usage.cost_usd)
            prompt_tokens += completion.usage.prompt_tokens
            completion_tokens += completion.usage.completion_tokens
            try:
                data = template.parse_output(completion.text)
                error = None
                break
            except ValueError as exc:
                cut = completion.finish_reason == "length"
                error = f"invalid output: {exc}" + (" (cut at max_tokens: raise it)" if cut else "")
        assert completion is not None
        return Record(
            index=index,
            status="failed" if error else "ok",
            text=completion.text,
            data=data,
            variables=variables,
            error=error,
            provenance=Provenance(
                template_id=template.id,
                template_version=template.version,
                model=self.backend.spec.id,
                params=params.model_copy(update={"seed": seed}),
                seed=seed,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=completion.finish_reason,
                latency_s=round(completion.latency_s, 4),
                attempts=attempt,
                cached=completion.cached,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                cost_usd=round(sum(costs), 8) if costs else None,
            ),
        )

    def _finish(
        self, request: DatasetRequest, sink: RecordSink, tally: _Tally, started: float
    ) -> None:
        summary = tally.summary
        summary.elapsed_s = time.perf_counter() - started
        complete = tally.finished == request.count and not summary.interrupted
        sink.end(request.count, complete=complete)
        summary.label_counts = tally.label_counts()


def file_sink(request: DatasetRequest) -> FileSink:
    """The sink of a run into ``request.output``; ``with`` it to hold the output's lock (a
    second run on the output is refused) for the run."""
    if request.output is None:
        raise InvalidParameter("a dataset run needs an output file or a record sink")
    recipe = request.template if isinstance(request.template, Recipe) else None
    export = recipe.export if recipe is not None else None
    return FileSink(request.output, export=export, rejects=request.rejects)


def _recipe_builder(
    spec: ModelSpec, request: DatasetRequest, spec_of: SpecOf, backend_of: BackendOf
) -> RecordBuilder:
    """A recipe run's record builder; building it checks the recipe whole (seed files, each
    llm column's model and parameters, fixed values and what record 0 makes of them) and the
    candidate budget."""
    recipe = request.template
    assert isinstance(recipe, Recipe)
    if request.candidates < request.count:
        raise InvalidParameter(
            f"--max-candidates {request.candidates} cannot give {request.count} records"
        )
    recipe.prepare()
    builder = RecordBuilder(
        recipe,
        run_model=spec.id,
        run_params=request.params,
        seed=request.seed,
        fixed=request.variables,
        spec_of=spec_of,
        backend_of=backend_of,
    )
    builder.check_fixed()
    builder.check_prompts()
    return builder


def _only(spec: ModelSpec) -> SpecOf:
    def spec_of(model_id: str) -> ModelSpec:
        if model_id != spec.id:
            raise InvalidParameter(f"this run has only model {spec.id!r}, not {model_id!r}")
        return spec

    return spec_of


async def _no_backend(model_id: str) -> Backend:
    raise AssertionError("a check must not load a model")


class _Tally:
    """The summary's counts, kept as records finish (resumed ones included)."""

    def __init__(self, labels: list[str], summary: DatasetSummary) -> None:
        self.summary = summary
        #: Indices finished, ok or failed: the run is complete when all of them are.
        self.finished = 0
        self._labels: dict[str, dict[str, int]] = {label: {} for label in labels}

    def resumed(self, record: Record) -> None:
        """A finished record of the run resumed: no tokens or cost of this run."""
        self.keep(record)
        self.summary.resumed += record.status == "ok"

    def keep(self, record: Record) -> None:
        """Count a finished record towards what the result holds."""
        self.finished += 1
        if record.status == "failed":
            self.summary.failed += 1
            first = self.summary.first_failure
            if first is None or record.index < first[0]:
                self.summary.first_failure = (record.index, record.error or "no reason given")
        if record.status != "ok":
            return
        self.summary.written += 1
        for label, values in self._labels.items():
            key = str(record.variables.get(label, (record.data or {}).get(label)))
            values[key] = values.get(key, 0) + 1

    def add(self, record: Record) -> None:
        """A record of this run: its tokens and cost too."""
        self.keep(record)
        summary = self.summary
        summary.prompt_tokens += record.provenance.prompt_tokens
        summary.completion_tokens += record.provenance.completion_tokens
        if not record.provenance.cached:
            summary.generated_tokens += record.provenance.completion_tokens
        summary.cached += record.provenance.cached
        if record.provenance.cost_usd is not None:
            summary.cost_usd = round((summary.cost_usd or 0.0) + record.provenance.cost_usd, 8)

    def label_counts(self) -> dict[str, dict[str, int]]:
        return {
            label: dict(sorted(values.items(), key=lambda kv: -kv[1]))
            for label, values in self._labels.items()
        }


def _params(spec: ModelSpec, values: dict[str, Any]) -> GenerationParams:
    """The model's defaults with ``values`` over them, checked (``InvalidParameter``)."""
    try:
        return spec.params(values)
    except ValueError as exc:
        raise InvalidParameter(_first_error(exc)) from None


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return f"{first_error(exc)} (got {exc.errors()[0].get('input')!r})"
    return str(exc)
