"""Recipe runs on a deterministic fake backend: exactly N, budgets, failed cells, the cell cache,
per-cell randomness, concurrency, provenance, near-duplicates, rejects and resume."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from textnlp.backends.base import Backend, PerRequestBackend
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, Record, TokenDelta, Usage
from textnlp.errors import CandidatesExhausted, Conflict, InvalidParameter, MissingExtra
from textnlp.generation.cache import SqliteResponseCache
from textnlp.generation.journal import journal_path
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest, DatasetSummary
from textnlp.generation.recipes.base import CellContext, cell_seed
from textnlp.generation.recipes.columns import Criterion, LlmJudge
from textnlp.generation.recipes.recipe import Recipe, parse_recipe
from textnlp.generation.sinks import FileSink
from textnlp.generation.templates import record_seed
from textnlp.generation.writers import read_dataset


class RecipeBackend(PerRequestBackend):
    """Answers a text derived from the request, and counts calls by the prompt's tag.

    A prompt starts with its column's tag (``"GEN: ..."``), so the calls of each column are
    counted apart. A judge's criterion request (it ends with the assistant's prefill) gets a
    score from 1 to 5; a prompt asking for JSON gets a JSON object, except ``BROKEN`` prompts
    (never valid JSON) and ``FLAKY`` ones (invalid the first time each prompt is seen). A
    ``SAME`` prompt's answer depends on its text only (not the seed): equal prompts, equal
    answers, for the near-duplicate filter.
    """

    name = "fake"

    def __init__(self, model: str = "fake-model", *, delay_s: float = 0.0) -> None:
        super().__init__(ModelSpec(id=model, backend="fake", context_length=4096))
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = delay_s
        self._seen: set[str] = set()

    def fingerprint(self) -> str:
        return f"recipe-fake:{self.spec.id}"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def complete(self, request: GenerationRequest) -> Completion:
        user = next(m.content for m in reversed(request.messages) if m.role == "user")
        tag = user.split(":", 1)[0]
        self.calls[tag] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        text = self._answer(tag, user, request)
        # A CUT prompt's answer runs to max_tokens half the time (by its digest).
        cut = tag == "CUT" and text.split()[-1][0] in "01234567"
        return Completion(
            text=text,
            finish_reason="length" if cut else "stop",
            model=self.spec.id,
            usage=Usage(
                prompt_tokens=self.count_tokens(request.as_text()),
                completion_tokens=self.count_tokens(text),
            ),
        )

    def _answer(self, tag: str, user: str, request: GenerationRequest) -> str:
        digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        if request.messages[-1].role == "assistant":  # a judge criterion's prefill
            return f" {int(digest[:8], 16) % 5 + 1}. Because {digest[:6]}."
        if "JSON Schema" in user:
            if "BROKEN" in user:
                return "Sure! {title: unquoted"
            if tag == "FLAKY" and user not in self._seen:
                self._seen.add(user)
                return "oops"
            return "Here: " + json.dumps({"title": f"t{digest[:8]}"})
        if tag == "SAME":
            words = hashlib.sha256(user.encode()).hexdigest()
            return " ".join(words[i : i + 4] for i in range(0, 48, 4))
        return f"{tag.lower()} says {digest[:10]}"


def load(columns: dict[str, Any], **top: Any) -> Recipe:
    return parse_recipe({"id": "t", "columns": columns, **top}, source="test")


#: Candidates rejected where the bernoulli column ``urgent`` is true (about 30%).
FILTERED: dict[str, Any] = {
    "topic": {"type": "category", "values": ["tea", "rain", "maps"]},
    "urgent": {"type": "bernoulli", "p": 0.3},
    "q": {"type": "llm-text", "prompt": "GEN: write about {{ topic }}"},
    "keep": {"type": "filter", "rule": "expression", "expr": "not urgent"},
}


def urgent(recipe: Recipe, seed: int, index: int) -> bool:
    column = recipe.columns["urgent"]
    return bool(column.sample(CellContext(seed=seed, index=index, column="urgent", row={})))  # type: ignore[union-attr]


def passing(recipe: Recipe, seed: int, count: int) -> list[int]:
    """The first ``count`` candidate indices whose ``urgent`` is false."""
    out: list[int] = []
    index = 0
    while len(out) < count:
        if not urgent(recipe, seed, index):
            out.append(index)
        index += 1
    return out


async def run(
    recipe: Recipe,
    out: Path,
    count: int,
    backend: Backend | None = None,
    *,
    cache: SqliteResponseCache | None = None,
    **options: Any,
) -> DatasetSummary:
    request = DatasetRequest(template=recipe, count=count, output=out, **options)
    return await DatasetPipeline(backend or RecipeBackend(), cache).run(request)


def essence(records: list[Record]) -> list[tuple[Any, ...]]:
    """What a record says, without timings and timestamps."""
    return [(r.index, r.status, r.text, r.data, r.variables, r.error) for r in records]


# exactly N -----------------------------------------------------------------------------------
async def test_exactly_n_records_pass_and_they_are_the_first_n_passing_candidates(
    tmp_path: Path,
) -> None:
    recipe = load(FILTERED)
    expected = passing(recipe, seed=3, count=100)
    last = expected[-1]
    rejected = [i for i in range(last + 1) if i not in expected]
    runs: dict[int, list[Record]] = {}
    for concurrency in (1, 4, 16):
        out, rejects = tmp_path / f"c{concurrency}.jsonl", tmp_path / f"r{concurrency}.jsonl"
        backend = RecipeBackend(delay_s=0.001)
        summary = await run(
            recipe, out, 100, backend, seed=3, concurrency=concurrency, rejects=rejects
        )
        records = read_dataset(out)
        assert [r.index for r in records] == expected
        assert all(r.status == "ok" and r.variables["urgent"] is False for r in records)
        assert summary.written == 100 and summary.failed == 0
        assert summary.acceptance is not None
        assert summary.acceptance["candidates"] == last + 1  # surplus is never committed
        assert summary.acceptance["accepted"] == 100
        assert summary.acceptance["rejected"] == {"keep": len(rejected)}
        assert summary.acceptance["pass_rate_per_filter"] == {"keep": round(100 / (last + 1), 4)}
        assert abs(len(rejected) / (last + 1) - 0.3) < 0.1  # the known share, about
        # The rejects file: every rejected candidate once, with its filter and reason.
        kept_apart = read_dataset(rejects)
        assert sorted(r.index for r in kept_apart) == rejected
        assert {r.status for r in kept_apart} == {"rejected"}
        assert {r.error for r in kept_apart} == {"keep: expression false: not urgent"}
        assert all(r.variables["urgent"] is True for r in kept_apart)
        # A record the filter rejects never calls the model (the filter needs no llm cell).
        assert backend.calls["GEN"] >= 100
        if concurrency == 1:
            assert backend.calls["GEN"] == 100
        else:  # plus at most the surplus in flight when the count was reached
            assert backend.calls["GEN"] <= 100 + concurrency
        assert not journal_path(out).exists()
        runs[concurrency] = records
    assert essence(runs[1]) == essence(runs[4]) == essence(runs[16])


async def test_a_filter_on_samplers_rejects_before_an_independent_llm_column_is_called(
    tmp_path: Path,
) -> None:
    recipe = load(FILTERED)
    backend = RecipeBackend()
    await run(recipe, tmp_path / "o.jsonl", 10, backend, seed=1, concurrency=1)
    candidates = passing(recipe, seed=1, count=10)[-1] + 1
    assert candidates > 10  # some were rejected...
    assert backend.calls == Counter({"GEN": 10})  # ...without a model call


async def test_max_candidates_stops_the_run_with_the_accepted_ones_written(
    tmp_path: Path,
) -> None:
    recipe = load(FILTERED)
    accepted = [i for i in range(22) if not urgent(recipe, 3, i)]
    assert len(accepted) < 20  # the budget cannot give 20
    out = tmp_path / "o.jsonl"
    with pytest.raises(CandidatesExhausted) as caught:
        await run(recipe, out, 20, seed=3, max_candidates=22, concurrency=8)
    error = caught.value
    assert "\n" not in error.message
    assert f"only {len(accepted)} of 20 records passed" in error.message
    assert "after 22 candidates, the most allowed" in error.message
    assert "--" not in error.message  # the CLI names its option where it renders this
    assert error.details["written"] == len(accepted) and error.details["requested"] == 20
    assert error.details["candidates"] == 22 and error.details["max_candidates"] == 22
    assert [r.index for r in read_dataset(out)] == accepted  # a valid file
    assert journal_path(out).exists()  # the run can go on with a larger budget

    summary = await run(recipe, out, 20, seed=3, max_candidates=80, resume=True)
    assert [r.index for r in read_dataset(out)] == passing(recipe, 3, 20)
    assert summary.resumed == len(accepted)


async def test_a_run_that_accepts_nothing_leaves_the_output_as_it_was(tmp_path: Path) -> None:
    """Every candidate fails (an expression over a value it cannot take): the error says why,
    and the user's existing file is not replaced by an empty dataset."""
    recipe = load(
        {
            "topic": {"type": "category", "values": ["tea", "rain"]},
            "q": {"type": "llm-text", "prompt": "GEN: write about {{ topic }}"},
            "bad": {"type": "expression", "expr": "{{ q + 1 }}"},
        }
    )
    out = tmp_path / "o.jsonl"
    out.write_text('{"precious": true}\n')
    with pytest.raises(CandidatesExhausted) as caught:
        await run(recipe, out, 2, max_candidates=4)
    message = caught.value.message
    assert message.startswith("only 0 of 2 records passed after 4 candidates"), message
    assert "4 failed, first: column bad:" in message and "written" not in message
    assert out.read_text() == '{"precious": true}\n'


@pytest.mark.parametrize(
    ("prompt", "reason"),
    [
        ("GEN: {{ topic / 2 }}", "unsupported operand type(s) for /"),
        ("GEN: {{ ''.__class__.__mro__ }}", "access to attribute '__class__'"),
        ("GEN: {{ 10 // n }}", "integer division or modulo by zero"),
    ],
)
async def test_a_prompt_that_cannot_be_rendered_fails_its_candidates_not_the_run(
    tmp_path: Path, prompt: str, reason: str
) -> None:
    """It was the jinja2 or Python error itself: a traceback from the CLI, three attempts of a
    job. Now a candidate failure with the reason, as in an expression column."""
    recipe = load(
        {
            "topic": {"type": "category", "values": ["tea"]},
            "n": {"type": "category", "values": [0]},
            "q": {"type": "llm-text", "prompt": prompt},
        }
    )
    backend = RecipeBackend()
    with pytest.raises(CandidatesExhausted) as caught:
        await run(recipe, tmp_path / "o.jsonl", 2, backend, max_candidates=4)
    message = caught.value.message
    assert "4 failed, first: column q: its prompt cannot be rendered: " + reason in message
    assert backend.calls == Counter()


async def test_a_count_beyond_max_candidates_is_refused_before_any_call(tmp_path: Path) -> None:
    recipe = load(FILTERED)
    out = tmp_path / "o.jsonl"
    out.write_text('{"precious": true}\n')
    backend = RecipeBackend()
    request = DatasetRequest(template=recipe, count=10, output=out, max_candidates=9)
    with pytest.raises(InvalidParameter, match=r"^--max-candidates 9 cannot give 10 records$"):
        DatasetPipeline.precheck(backend.spec, request)
    with pytest.raises(InvalidParameter, match="--max-candidates 9 cannot give 10 records"):
        await DatasetPipeline(backend).run(request)
    assert backend.calls == Counter()
    assert out.read_text() == '{"precious": true}\n'
    assert not journal_path(out).exists()


def test_parameters_are_checked_when_no_model_writes_the_output() -> None:
    # A recipe of samplers only: the parameters were built unchecked (pydantic's traceback).
    recipe = load({"a": {"type": "category", "values": ["x", "y"]}}, output="a")
    spec = RecipeBackend().spec
    for params, field in (({"temperature": 5}, "temperature"), ({"max_tokens": 0}, "max_tokens")):
        request = DatasetRequest(template=recipe, count=2, params=params)
        with pytest.raises(InvalidParameter, match=f"^{field}: "):
            DatasetPipeline.resolve(spec, request)


# failed cells --------------------------------------------------------------------------------
STRUCTURED: dict[str, Any] = {
    "broken": {"type": "bernoulli", "p": 0.25},
    "facts": {
        "type": "llm-structured",
        "prompt": "FACTS: about {{ 'BROKEN' if broken else 'fine' }} things",
        "schema": {
            "type": "object",
            "properties": {"title": {"type": "string"}},
            "required": ["title"],
        },
    },
}


async def test_invalid_json_fails_the_record_not_the_run(tmp_path: Path) -> None:
    recipe = load(STRUCTURED)
    out, rejects = tmp_path / "o.jsonl", tmp_path / "rejects.jsonl"
    backend = RecipeBackend()
    summary = await run(recipe, out, 12, backend, seed=2, concurrency=1, rejects=rejects)
    records = read_dataset(out)
    assert len(records) == 12 and all(r.status == "ok" for r in records)
    assert all(r.data and r.data["facts"]["title"].startswith("t") for r in records)
    assert all(json.loads(r.text) == r.data["facts"] for r in records if r.data)
    failed = read_dataset(rejects)
    assert failed and {r.status for r in failed} == {"failed"}
    assert all(r.variables["broken"] is True for r in failed)
    for record in failed:
        assert record.error is not None
        assert record.error.startswith("column facts: invalid output after 3 attempts:")
        assert "facts" not in (record.data or {})
    assert summary.failed == len(failed)
    assert summary.acceptance is not None and summary.acceptance["failed"] == len(failed)
    # Each failed cell was tried 1 + retries (2) times; each good one once.
    assert backend.calls["FACTS"] == 12 + 3 * len(failed)


#: A full 1-5 scale (see ``test_a_rubric_with_anchor_scores_only``).
FIVE = {1: "useless", 2: "weak", 3: "fair", 4: "good", 5: "perfect"}


# the cell cache ------------------------------------------------------------------------------
def judged(judge_prompt: str, gen_prompt: str = "GEN: a tip about {{ topic }}") -> Recipe:
    return load(
        {
            "topic": {"type": "category", "values": ["tea", "rain", "maps", "bikes"]},
            "gen": {"type": "llm-text", "prompt": gen_prompt},
            "score": {
                "type": "llm-judge",
                "prompt": judge_prompt,
                "rubric": {
                    "helpful": {"scores": FIVE},
                    "clear": {"scores": FIVE},
                },
            },
        }
    )


async def test_editing_a_late_column_reruns_only_that_column(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "cache.sqlite")
    first = RecipeBackend()
    await run(judged("JUDGE: rate {{ gen }}"), tmp_path / "a.jsonl", 8, first, cache=cache)
    assert first.calls == Counter({"GEN": 8, "JUDGE": 16})  # two criteria each

    # Only the judge's prompt changes: every generator call comes from the cache.
    second = RecipeBackend()
    edited = judged("JUDGE: rate this tip strictly: {{ gen }}")
    await run(edited, tmp_path / "b.jsonl", 8, second, cache=cache)
    assert second.calls == Counter({"JUDGE": 16})
    a, b = read_dataset(tmp_path / "a.jsonl"), read_dataset(tmp_path / "b.jsonl")
    assert [r.data["gen"] for r in a if r.data] == [r.data["gen"] for r in b if r.data]
    assert [r.text for r in a] == [r.text for r in b]
    for record in b:
        cells = record.provenance.cells
        assert cells is not None and cells["gen"].cached and not cells["score"].cached
        assert not record.provenance.cached  # not every cell came from the cache

    # The same recipe again: nothing is called.
    third = RecipeBackend()
    summary = await run(edited, tmp_path / "c.jsonl", 8, third, cache=cache)
    assert third.calls == Counter()
    assert all(r.provenance.cached for r in read_dataset(tmp_path / "c.jsonl"))
    assert summary.cached == 8
    assert essence(read_dataset(tmp_path / "c.jsonl")) == essence(b)

    # An edited generator changes what the judge reads: both run again.
    fourth = RecipeBackend()
    regen = judged("JUDGE: rate this tip strictly: {{ gen }}", "GEN: one tip on {{ topic }}")
    await run(regen, tmp_path / "d.jsonl", 8, fourth, cache=cache)
    assert fourth.calls == Counter({"GEN": 8, "JUDGE": 16})
    cache.close()


# randomness ----------------------------------------------------------------------------------
async def test_a_cells_randomness_depends_on_seed_index_and_column_only(tmp_path: Path) -> None:
    base = {
        "topic": {"type": "category", "values": ["tea", "rain", "maps", "bikes", "jazz"]},
        "n": {"type": "uniform", "low": 1, "high": 1000, "integer": True},
        "who": {"type": "person"},
        "q": {"type": "llm-text", "prompt": "GEN: {{ topic }} x{{ n }} by {{ who.name }}"},
    }
    more = {
        "extra": {"type": "gaussian", "mean": 0, "stddev": 1},  # an unrelated column, first
        **base,
        "when": {"type": "datetime", "start": "2024-01-01", "end": "2024-12-31"},
        "other": {"type": "llm-text", "prompt": "OTHER: {{ when }}"},
    }
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    await run(load(base), a, 12, seed=9, concurrency=5)
    await run(load(more, output="q"), b, 12, seed=9, concurrency=2)
    plain, extended = read_dataset(a), read_dataset(b)
    for x, y in zip(plain, extended, strict=True):
        assert x.index == y.index
        for name in ("topic", "n", "who"):
            assert x.variables[name] == y.variables[name]
        assert x.data and y.data and x.data["q"] == y.data["q"]
        assert x.text == y.text
        assert x.provenance.cells and y.provenance.cells
        assert x.provenance.cells["q"].seed == y.provenance.cells["q"].seed
        assert x.provenance.cells["q"].seed == cell_seed(9, x.index, "q")
    assert len({r.variables["n"] for r in plain}) > 6  # really random across records

    await run(load(base), tmp_path / "c.jsonl", 12, seed=10)
    other_seed = read_dataset(tmp_path / "c.jsonl")
    assert [r.variables["n"] for r in other_seed] != [r.variables["n"] for r in plain]


# concurrency inside a record -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("columns", "together"),
    [
        (
            {
                "a": {"type": "llm-text", "prompt": "A: one"},
                "b": {"type": "llm-text", "prompt": "B: two"},
                "c": {"type": "llm-text", "prompt": "C: {{ a }} and {{ b }}"},
            },
            2,
        ),
        (
            {
                "a": {"type": "llm-text", "prompt": "A: one"},
                "b": {"type": "llm-text", "prompt": "B: after {{ a }}"},
                "c": {"type": "llm-text", "prompt": "C: after {{ b }}"},
            },
            1,
        ),
    ],
    ids=["independent", "chain"],
)
async def test_independent_llm_columns_of_a_record_run_together(
    tmp_path: Path, columns: dict[str, Any], together: int
) -> None:
    backend = RecipeBackend(delay_s=0.02)
    await run(load(columns), tmp_path / "o.jsonl", 3, backend, concurrency=1)  # one record at once
    assert backend.max_in_flight == together
    assert backend.calls == Counter({"A": 3, "B": 3, "C": 3})
    assert len(read_dataset(tmp_path / "o.jsonl")) == 3


async def test_records_run_together_up_to_the_concurrency(tmp_path: Path) -> None:
    backend = RecipeBackend(delay_s=0.02)
    columns = {"a": {"type": "llm-text", "prompt": "A: {{ n }}"}, "n": {"type": "uuid"}}
    await run(load(columns), tmp_path / "o.jsonl", 12, backend, concurrency=6)
    assert backend.max_in_flight == 6


class HeadOfLineBackend(RecipeBackend):
    """The first request waits until ``others`` other requests have been answered."""

    def __init__(self, others: int) -> None:
        super().__init__()
        self.others = others
        self.answered = 0
        self.first: str | None = None
        self.released = asyncio.Event()

    async def complete(self, request: GenerationRequest) -> Completion:
        if self.first is None:
            self.first = request.model_dump_json()
        if request.model_dump_json() == self.first:
            await self.released.wait()
        answer = await super().complete(request)
        self.answered += 1
        if self.answered >= self.others:
            self.released.set()
        return answer


async def test_a_slow_candidate_does_not_hold_the_others_back(tmp_path: Path) -> None:
    # Candidate 0 answers only after 8 others have: finished candidates waiting to be committed
    # behind it must not take the slots of the window (with 4 slots the run would stall).
    backend = HeadOfLineBackend(others=8)
    columns = {"a": {"type": "llm-text", "prompt": "A: {{ n }}"}, "n": {"type": "uuid"}}
    out = tmp_path / "o.jsonl"
    await asyncio.wait_for(run(load(columns), out, 12, backend, concurrency=4), timeout=60)
    assert [r.index for r in read_dataset(out)] == list(range(12))
    assert backend.calls["A"] == 12  # none surplus: the waiting ones counted as needed no more


# provenance ----------------------------------------------------------------------------------
async def test_provenance_per_cell(tmp_path: Path) -> None:
    recipe = load(
        {
            "topic": {"type": "category", "values": ["tea", "rain"]},
            "q": {
                "type": "llm-text",
                "prompt": "GEN: about {{ topic }}",
                "params": {"max_tokens": 33, "temperature": 0.4},
            },
            "facts": {
                "type": "llm-structured",
                "prompt": "FLAKY: facts on {{ q }}",
                "schema": {"type": "object", "required": ["title"]},
            },
            "score": {
                "type": "llm-judge",
                "model": "fake-judge",
                "prompt": "JUDGE: {{ q }}",
                "rubric": {"helpful": {"scores": FIVE}},
            },
        },
        output="q",
    )
    main, judge = RecipeBackend(), RecipeBackend("fake-judge")

    async def backend_of(model_id: str) -> Backend:
        assert model_id == "fake-judge"
        return judge

    pipeline = DatasetPipeline(main, spec_of=lambda model_id: judge.spec, backend_of=backend_of)
    out = tmp_path / "o.jsonl"
    await pipeline.run(DatasetRequest(template=recipe, count=4, output=out, seed=6))
    assert main.calls == Counter({"GEN": 4, "FLAKY": 8}) and judge.calls == Counter({"JUDGE": 4})
    for record in read_dataset(out):
        made = record.provenance
        cells = made.cells
        assert cells is not None and set(cells) == {"q", "facts", "score"}
        q, facts, score = cells["q"], cells["facts"], cells["score"]
        assert q.model == facts.model == made.model == "fake-model"
        assert score.model == "fake-judge"
        assert q.params.max_tokens == 33 and q.params.temperature == 0.4
        assert made.params.max_tokens == 33  # the record's are its output column's
        for name, cell in cells.items():
            assert cell.seed == cell.params.seed == cell_seed(6, record.index, name)
            assert cell.prompt_tokens > 0 and cell.completion_tokens > 0
            assert cell.latency_s >= 0 and not cell.cached and cell.cost_usd is None
        assert q.attempts == 1 and score.attempts == 1
        assert facts.attempts == 2  # the first answer was not JSON
        assert facts.completion_tokens == 1 + 3  # "oops", then 'Here: {"title": "t..."}'
        assert made.seed == record_seed(6, record.index)
        assert made.prompt_tokens == sum(c.prompt_tokens for c in cells.values())
        assert made.completion_tokens == sum(c.completion_tokens for c in cells.values())
        assert made.attempts == 2 and made.template_id == "t"
        assert record.data and record.text == record.data["q"]
        assert record.data["score"]["helpful"]["score"] in {1, 2, 3, 4, 5}
        assert record.data["score"]["helpful"]["reason"].startswith("Because")


# how a call ended ---------------------------------------------------------------------------
async def test_a_cell_cut_at_max_tokens_is_rejected_by_the_finished_filter(
    tmp_path: Path,
) -> None:
    recipe = load(
        {
            "topic": {"type": "category", "values": ["tea", "rain", "maps"]},
            "q": {"type": "llm-text", "prompt": "CUT: write about {{ topic }}"},
            "done": {"type": "filter", "rule": "finished", "column": "q"},
        }
    )
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    summary = await run(recipe, out, 10, seed=2, max_candidates=100, rejects=rejects)
    kept, cut = read_dataset(out), read_dataset(rejects)
    assert len(kept) == 10 and cut  # the backend cuts about half
    assert all(r.provenance.finish_reason == "stop" for r in kept)
    assert all(r.provenance.finish_reason == "length" for r in cut)
    assert {r.error for r in cut} == {"done: q stopped at max_tokens"}
    assert summary.acceptance is not None
    assert summary.acceptance["rejected"] == {"done": len(cut)}


# a filter's extra ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "module"),
    [
        ({"rule": "language", "languages": ["en"]}, "langdetect"),
        ({"rule": "near-duplicate"}, "datasketch"),
    ],
)
async def test_a_filter_whose_extra_is_missing_stops_the_run_before_a_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rule: dict[str, Any], module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # not installed
    recipe = load({**FILTERED, "check": {"type": "filter", "column": "q", **rule}})
    out = tmp_path / "out.jsonl"
    out.write_text("kept\n")
    backend = RecipeBackend()
    with pytest.raises(MissingExtra) as refused:
        await run(recipe, out, 5, backend)
    assert refused.value.details == {"module": module, "extra": "validation"}
    assert "the filter 'check' needs the 'validation' extra" in refused.value.message
    assert backend.calls == Counter() and out.read_text() == "kept\n"


# near-duplicates -----------------------------------------------------------------------------
async def test_near_duplicates_are_judged_in_index_order_whatever_the_concurrency(
    tmp_path: Path,
) -> None:
    recipe = load(
        {
            "topic": {"type": "uniform", "low": 0, "high": 5, "integer": True},
            "q": {"type": "llm-text", "prompt": "SAME: the story of {{ topic }}"},
            "dedup": {"type": "filter", "rule": "near-duplicate", "column": "q"},
        }
    )
    topics: list[int] = []
    first: dict[int, int] = {}
    while len(first) < 6:
        index = len(topics)
        ctx = CellContext(seed=4, index=index, column="topic", row={})
        topics.append(int(recipe.columns["topic"].sample(ctx)))  # type: ignore[union-attr, arg-type]
        first.setdefault(topics[-1], index)
    expected = sorted(first.values())
    duplicates = {i: first[t] for i, t in enumerate(topics) if first[t] != i}
    assert duplicates  # the test means something
    results = []
    for concurrency in (1, 4, 16):
        out, rejects = tmp_path / f"o{concurrency}.jsonl", tmp_path / f"r{concurrency}.jsonl"
        summary = await run(
            recipe,
            out,
            6,
            RecipeBackend(delay_s=0.001),
            seed=4,
            concurrency=concurrency,
            max_candidates=200,
            rejects=rejects,
        )
        records = read_dataset(out)
        assert [r.index for r in records] == expected
        kept_apart = {r.index: r.error for r in read_dataset(rejects)}
        assert set(kept_apart) == set(duplicates)
        for index, original in duplicates.items():
            assert (
                kept_apart[index] == f"dedup: near-duplicate of record {original} (Jaccard ~1.00)"
            )
        assert summary.acceptance is not None
        assert summary.acceptance["rejected"] == {"dedup": len(duplicates)}
        results.append(essence(records))
    assert results[0] == results[1] == results[2]


# resume --------------------------------------------------------------------------------------
class StoppingSink(FileSink):
    """A file sink that fails after ``after`` appends, as a crash at a checkpoint does."""

    def __init__(self, output: Path, after: int, **kw: Any) -> None:
        super().__init__(output, **kw)
        self.after = after
        self.appended = 0

    def append(self, record: Record) -> None:
        if self.appended == self.after:
            raise RuntimeError("the machine went away")
        super().append(record)
        self.appended += 1


RESUMED: dict[str, Any] = {
    **FILTERED,
    "score": {
        "type": "llm-judge",
        "prompt": "JUDGE: {{ q }}",
        "rubric": {"helpful": {"scores": FIVE}},
    },
}


@pytest.mark.parametrize("how", ["sink-raises", "cancelled"])
async def test_a_stopped_run_resumes_with_every_record_once_as_a_clean_run(
    tmp_path: Path, how: str
) -> None:
    recipe = load(RESUMED, output="q")
    clean, out = tmp_path / "clean.jsonl", tmp_path / "out.jsonl"
    clean_rejects, out_rejects = tmp_path / "clean-rejects.jsonl", tmp_path / "rejects.jsonl"
    await run(recipe, clean, 25, seed=8, concurrency=4, rejects=clean_rejects)

    request = DatasetRequest(
        template=recipe, count=25, output=out, seed=8, concurrency=4, rejects=out_rejects
    )
    if how == "sink-raises":
        sink = StoppingSink(out, 9, export=recipe.export, rejects=out_rejects)
        with pytest.raises(RuntimeError, match="went away"):
            await DatasetPipeline(RecipeBackend(delay_s=0.001)).run(request, sink=sink)
        assert not out.exists()  # a failure leaves the output as it was
    else:
        seen = 0

        def on_record(_: Record) -> None:
            nonlocal seen
            seen += 1
            if seen == 9:
                task.cancel()

        pipeline = DatasetPipeline(RecipeBackend(delay_s=0.001))
        task = asyncio.create_task(pipeline.run(request, on_record))
        with pytest.raises(asyncio.CancelledError):
            await task
        partial = [r.index for r in read_dataset(out)]  # a valid file of what was accepted
        assert partial == sorted(set(partial)) and 0 < len(partial) < 25
    journal = journal_path(out)
    committed = [json.loads(line)["index"] for line in journal.read_text().splitlines()]
    assert committed == list(range(len(committed))) and len(committed) >= 9

    backend = RecipeBackend(delay_s=0.001)
    done_ok = sum(json.loads(line)["status"] == "ok" for line in journal.read_text().splitlines())
    summary = await run(
        recipe, out, 25, backend, seed=8, concurrency=4, rejects=out_rejects, resume=True
    )
    resumed = read_dataset(out)
    assert len(resumed) == 25 and len({r.index for r in resumed}) == 25
    assert essence(resumed) == essence(read_dataset(clean))
    assert essence(read_dataset(out_rejects)) == essence(read_dataset(clean_rejects))
    assert summary.resumed == done_ok and summary.written == 25
    # Nothing committed before the stop is made again.
    assert 25 - done_ok <= backend.calls["GEN"] <= 25 - done_ok + 4
    assert not journal.exists()


async def test_a_finished_run_with_rejects_extends_as_a_clean_run(tmp_path: Path) -> None:
    """Its output holds the accepted candidates only: the rejected ones are gaps, which a
    resume refused ("the committed candidates stop at 0"). It goes on after the last one,
    and an extension stopped half way resumes from its journal of the same gaps."""
    recipe = load(RESUMED, output="q")
    clean, out = tmp_path / "clean.jsonl", tmp_path / "out.jsonl"
    await run(recipe, clean, 25, seed=8, concurrency=4)
    await run(recipe, out, 10, seed=8, concurrency=4)
    kept = [r.index for r in read_dataset(out)]
    assert kept != list(range(10))  # some candidates were rejected
    same = await run(recipe, out, 10, seed=8, resume=True)  # nothing more to make
    assert same.written == 10 and [r.index for r in read_dataset(out)] == kept
    request = DatasetRequest(template=recipe, count=25, output=out, seed=8, resume=True)
    sink = StoppingSink(out, 4, export=recipe.export)
    with pytest.raises(RuntimeError, match="went away"):
        await DatasetPipeline(RecipeBackend(delay_s=0.001)).run(request, sink=sink)
    backend = RecipeBackend(delay_s=0.001)
    summary = await run(recipe, out, 25, backend, seed=8, concurrency=4, resume=True)
    assert essence(read_dataset(out)) == essence(read_dataset(clean))
    assert summary.written == 25 and backend.calls["GEN"] <= 25 - 10 + 4


async def test_a_resume_with_another_seed_is_refused_and_keeps_the_file(tmp_path: Path) -> None:
    recipe = load(FILTERED)
    out = tmp_path / "o.jsonl"
    await run(recipe, out, 5, seed=1)
    before = out.read_bytes()
    backend = RecipeBackend()
    with pytest.raises(Conflict, match="another seed"):
        await run(recipe, out, 8, backend, seed=2, resume=True)
    assert out.read_bytes() == before and backend.calls == Counter()


TWO_CALLS: dict[str, Any] = {
    "topic": {"type": "category", "values": ["tea", "rain", "maps"]},
    "q": {"type": "llm-text", "prompt": "GEN: ask about {{ topic }}"},
    "a": {"type": "llm-text", "prompt": "ANS: {{ q }}", "params": {"temperature": 0.5}},
}


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        # The output column keeps its own parameters; the other llm column took the run's.
        (RecipeBackend(), {"params": {"temperature": 1.9}}, "column 'q' made with temperature"),
        (RecipeBackend("other-model"), {}, "column 'q' made by model 'fake-model'"),
        (RecipeBackend(), {"variables": {"topic": "maps"}}, "has topic="),
    ],
)
async def test_a_resume_of_another_run_is_refused_whichever_column_differs(
    tmp_path: Path, backend: RecipeBackend, options: dict[str, Any], message: str
) -> None:
    """Each was a file of two runs: the first records' q made otherwise than the later ones'."""
    recipe = load(TWO_CALLS, output="a")
    out = tmp_path / "o.jsonl"
    await run(recipe, out, 3, seed=4)
    before = out.read_bytes()
    with pytest.raises(Conflict, match=message):
        await run(recipe, out, 5, backend, seed=4, resume=True, **options)
    assert out.read_bytes() == before and backend.calls == Counter()


async def test_a_resume_without_the_var_given_before_is_refused(tmp_path: Path) -> None:
    recipe = load(TWO_CALLS, output="a")
    out = tmp_path / "o.jsonl"
    await run(recipe, out, 3, seed=4, variables={"topic": "maps"})
    with pytest.raises(Conflict, match="has topic='maps', not"):
        await run(recipe, out, 5, seed=4, resume=True)


async def test_a_csv_resume_with_a_number_given_continues(tmp_path: Path) -> None:
    """A CSV gives a variable back as text: '5' is the 5 given again, not another value."""
    recipe = load({"rating": {"type": "uniform", "low": 1, "high": 5, "integer": True}, **FILTERED})
    out = tmp_path / "o.csv"
    await run(recipe, out, 3, seed=4, variables={"rating": 5})
    summary = await run(recipe, out, 5, seed=4, variables={"rating": 5}, resume=True)
    assert summary.resumed == 3 and len(read_dataset(out)) == 5


# judges --------------------------------------------------------------------------------------
async def test_a_rubric_with_anchor_scores_admits_every_score_between(tmp_path: Path) -> None:
    """The documented rubric ``{1: useless, 5: perfect}``: the prompt asks for a whole number
    from 1 to 5, so 3 is a score; 7 is not, and is retried until the record fails."""

    def recipe(gen: str) -> Recipe:
        return load(
            {
                "gen": {"type": "llm-text", "prompt": f"GEN: {gen}"},
                "score": {
                    "type": "llm-judge",
                    "prompt": "JUDGE: {{ gen }}",
                    "rubric": {"helpful": {"scores": {1: "useless", 5: "perfect"}}},
                },
            }
        )

    class Judging(RecipeBackend):
        def _answer(self, tag: str, user: str, request: GenerationRequest) -> str:
            if tag != "JUDGE":
                return "a tip" if "fine" in user else "way off"
            return " 3. It is fine." if "a tip" in user else " 7 out of 5!"

    backend = Judging()
    await run(recipe("fine"), tmp_path / "o.jsonl", 2, backend, max_candidates=2)
    records = read_dataset(tmp_path / "o.jsonl")
    assert [r.data["score"]["helpful"] for r in records if r.data] == [
        {"score": 3, "reason": "It is fine."}
    ] * 2
    assert backend.calls["JUDGE"] == 2

    out, rejects = tmp_path / "p.jsonl", tmp_path / "rejects.jsonl"
    with pytest.raises(CandidatesExhausted):
        await run(recipe("odd"), out, 1, Judging(), max_candidates=1, rejects=rejects)
    (failed,) = read_dataset(rejects)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.startswith("column score: invalid output after 4 attempts")
    assert "outside 1-5" in failed.error


async def test_a_judge_decodes_under_its_grammar_where_the_backend_can(tmp_path: Path) -> None:
    """A backend that keeps to grammars gets each criterion's grammar and a prompt without the
    example answers (the grammar gives the shape; small models copy examples' reasons); one
    that cannot gets the examples and no grammar."""
    recipe = load(
        {
            "gen": {"type": "llm-text", "prompt": "GEN: a tip"},
            "score": {
                "type": "llm-judge",
                "prompt": "JUDGE: {{ gen }}",
                "rubric": {"helpful": {"scores": {1: "useless", 3: "fine", 5: "perfect"}}},
            },
        }
    )

    class Seeing(RecipeBackend):
        def __init__(self, grammars: bool) -> None:
            super().__init__()
            self.grammars = grammars
            self.judged: list[GenerationRequest] = []

        async def complete(self, request: GenerationRequest) -> Completion:
            if request.messages[-1].role == "assistant":
                self.judged.append(request)
            return await super().complete(request)

    constrained, free = Seeing(grammars=True), Seeing(grammars=False)
    await run(recipe, tmp_path / "a.jsonl", 2, constrained)
    await run(recipe, tmp_path / "b.jsonl", 2, free)
    judge = recipe.columns["score"]
    assert isinstance(judge, LlmJudge)
    assert [r.grammar for r in constrained.judged] == [judge.criterion_grammar("helpful")] * 2
    assert all("examples" not in r.messages[0].content for r in constrained.judged)
    assert [r.grammar for r in free.judged] == [None, None]
    assert all("Score: 2. Reason:" in r.messages[0].content for r in free.judged)


def test_a_judge_grammar_lists_the_scale_and_leaves_out_a_scale_too_wide() -> None:
    def judge(scores: dict[int, str]) -> LlmJudge:
        return LlmJudge(prompt="x", rubric={"c": Criterion(scores=scores)})

    assert judge({1: "bad", 5: "good"}).criterion_grammar("c") == (
        'root ::= " " ("5" | "4" | "3" | "2" | "1") ". Reason:" " " " "? [A-Za-z"\'] [^\\n]*\n'
    )
    assert '("1" | "0" | "-1")' in (judge({-1: "bad", 1: "good"}).criterion_grammar("c") or "")
    assert judge({0: "bad", 1000: "good"}).criterion_grammar("c") is None


def test_a_judge_on_a_scale_below_zero_reads_the_sign_its_grammar_writes() -> None:
    """The grammar of a -2..2 scale lets the model answer "-2"; it was read as 2, the worst
    score as the best."""
    judge = LlmJudge(prompt="x", rubric={"c": Criterion(scores={-2: "harmful", 2: "helpful"})})
    assert judge.parse_score("c", " -2. Reason: it misleads.") == {
        "score": -2,
        "reason": "it misleads.",
    }
    assert judge.parse_score("c", " 1. Reason: it helps a bit.")["score"] == 1
    plain = LlmJudge(prompt="x", rubric={"c": Criterion(scores={1: "bad", 5: "good"})})
    assert plain.parse_score("c", " 4. Reason: fine.")["score"] == 4
