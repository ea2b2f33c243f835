"""The dataset pipeline on a deterministic fake backend: resume, interruption, cache, JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.fake_backend import FakeBackend
from textnlp.domain import Completion, GenerationRequest, Usage
from textnlp.errors import (
    Conflict,
    DatasetError,
    InvalidParameter,
    OutputError,
    ServiceUnavailable,
    TemplateError,
)
from textnlp.generation.cache import SqliteResponseCache
from textnlp.generation.journal import journal_path
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.templates import TemplateLibrary
from textnlp.generation.writers import read_dataset

LIBRARY = TemplateLibrary.load()


def request(
    out: Path, count: int = 10, template: str = "product-review", **kw: object
) -> DatasetRequest:
    return DatasetRequest(template=LIBRARY.get(template), count=count, output=out, **kw)  # type: ignore[arg-type]


async def interrupted_run(req: DatasetRequest, after: int) -> None:
    """Run and cancel after ``after`` records, as Ctrl-C does under asyncio.run."""
    seen = 0

    def on_record(_: object) -> None:
        nonlocal seen
        seen += 1
        if seen == after:
            task.cancel()

    task = asyncio.create_task(DatasetPipeline(FakeBackend(delay_s=0.001)).run(req, on_record))
    with pytest.raises(asyncio.CancelledError):
        await task


def indices(path: Path) -> list[int]:
    return [r.index for r in read_dataset(path)]


async def test_every_index_once_in_order_with_provenance(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    summary = await DatasetPipeline(FakeBackend()).run(request(out, 25, concurrency=7, seed=3))
    records = read_dataset(out)
    assert [r.index for r in records] == list(range(25))
    assert summary.written == 25 and summary.failed == 0
    first = records[0]
    assert first.provenance.template_id == "product-review"
    assert first.provenance.template_version == "1.1"
    assert first.provenance.model == "fake-model"
    assert first.provenance.params.max_tokens == 160  # the template's default
    assert list(first.provenance.params.stop or ()) == ["\n\n"]
    assert first.provenance.seed == first.provenance.params.seed
    assert set(first.variables) >= {"rating", "sentiment", "product"}
    assert not journal_path(out).exists()  # a finished run leaves no journal
    assert sum(summary.label_counts["rating"].values()) == 25


async def test_same_seed_same_dataset_whatever_the_concurrency(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    await DatasetPipeline(FakeBackend()).run(request(a, 12, concurrency=1, seed=5))
    await DatasetPipeline(FakeBackend()).run(request(b, 12, concurrency=12, seed=5))
    assert [r.text for r in read_dataset(a)] == [r.text for r in read_dataset(b)]


async def test_interrupted_run_leaves_a_valid_file_and_resumes_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    await interrupted_run(request(out, 30, concurrency=4), after=9)
    partial = indices(out)
    assert partial and partial == sorted(set(partial)) and len(partial) < 30
    assert journal_path(out).exists()

    backend = FakeBackend()
    summary = await DatasetPipeline(backend).run(request(out, 30, concurrency=4, resume=True))
    assert indices(out) == list(range(30))
    assert summary.resumed == len(partial)
    assert backend.calls == 30 - len(partial)  # nothing generated twice
    assert not journal_path(out).exists()


async def test_resume_cuts_a_torn_journal_line(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    await interrupted_run(request(out, 10, concurrency=1), after=5)
    journal = journal_path(out)
    with journal.open("a") as handle:
        handle.write('{"index": 7, "text": "half a reco')  # what SIGKILL mid-write leaves
    await DatasetPipeline(FakeBackend()).run(request(out, 10, concurrency=3, resume=True))
    assert indices(out) == list(range(10))


async def test_a_run_refused_before_its_first_record_leaves_no_journal(tmp_path: Path) -> None:
    class Down(FakeBackend):
        async def complete(self, request: GenerationRequest) -> Completion:
            raise ServiceUnavailable("cannot reach the cache (Redis)", dependency="cache")

    out = tmp_path / "d.jsonl"
    with pytest.raises(BaseExceptionGroup) as caught:  # the workers' task group
        await DatasetPipeline(Down()).run(request(out, 3))
    assert caught.group_contains(ServiceUnavailable)
    assert not out.exists() and not journal_path(out).exists()


async def test_a_resume_onto_a_file_of_other_records_says_so_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    out.write_text('{"prompt": "hi", "foo": 1}\n')
    with pytest.raises(DatasetError) as refused:
        await DatasetPipeline(FakeBackend()).run(request(out, 2, resume=True))
    assert (
        refused.value.message == f"{out} is not a textnlp dataset: a record's index: Field required"
    )
    assert out.read_text() == '{"prompt": "hi", "foo": 1}\n'


async def test_resume_from_a_finished_file_extends_it(tmp_path: Path) -> None:
    out = tmp_path / "d.csv"
    await DatasetPipeline(FakeBackend()).run(request(out, 5))
    backend = FakeBackend()
    await DatasetPipeline(backend).run(request(out, 8, resume=True))
    assert indices(out) == list(range(8)) and backend.calls == 3


def test_response_cache_keeps_the_newest_entries_within_its_bound(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "cache.sqlite", max_entries=300)
    answer = Completion(
        text="x", finish_reason="stop", model="m", usage=Usage(prompt_tokens=1, completion_tokens=1)
    )
    for i in range(3 * SqliteResponseCache.TRIM_EVERY):  # 768 writes: trimmed at 256, 512, 768
        cache.put(f"k{i}", answer.model_copy(update={"text": f"t{i}"}))
    assert len(cache) == 300
    assert cache.get("k0") is None and cache.get("k467") is None  # the oldest written went
    newest = cache.get("k767")
    assert newest is not None and newest.text == "t767"
    assert cache.get("k468") is not None
    cache.close()


async def test_response_cache_makes_a_repeated_run_free(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "cache.sqlite")
    first_backend = FakeBackend()
    await DatasetPipeline(first_backend, cache).run(request(tmp_path / "a.jsonl", 6))
    second_backend = FakeBackend()
    summary = await DatasetPipeline(second_backend, cache).run(request(tmp_path / "b.jsonl", 6))
    assert second_backend.calls == 0 and summary.cached == 6
    # nothing was generated: no tokens/s to claim (it once divided cached tokens by a blink)
    assert summary.completion_tokens > 0 and summary.tokens_per_s == 0.0
    # Any parameter change is a different key.
    third = FakeBackend()
    await DatasetPipeline(third, cache).run(
        request(tmp_path / "c.jsonl", 6, params={"temperature": 0.5})
    )
    assert third.calls == 6
    assert cache.clear() == 12


async def test_invalid_json_is_retried_then_counted(tmp_path: Path) -> None:
    out = tmp_path / "qa.jsonl"
    backend = FakeBackend(json_failures=1)
    summary = await DatasetPipeline(backend).run(request(out, 3, "qa-pairs", concurrency=1))
    records = read_dataset(out)
    assert len(records) == 3 and summary.failed == 0
    assert records[0].provenance.attempts == 2 and records[0].data is not None
    assert set(records[0].data) == {"question", "answer"}
    # Every attempt's tokens, as its cost counts them (the first answered "not json at all").
    assert records[0].provenance.completion_tokens == 4 + len(records[0].text.split())
    assert summary.completion_tokens == sum(r.provenance.completion_tokens for r in records)

    always_bad = FakeBackend(json_failures=10**6)
    summary = await DatasetPipeline(always_bad).run(
        request(tmp_path / "bad.jsonl", 2, "qa-pairs", json_retries=2)
    )
    assert summary.failed == 2 and summary.written == 0 and always_bad.calls == 6


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
async def test_every_format_round_trips(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"d{suffix}"
    await DatasetPipeline(FakeBackend()).run(request(out, 4, "qa-pairs"))
    records = read_dataset(out)
    assert [r.index for r in records] == [0, 1, 2, 3]
    assert records[2].data and "answer" in records[2].data
    assert records[2].provenance.template_id == "qa-pairs"


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"count": 0}, InvalidParameter, "count must be at least 1"),
        ({"params": {"temperature": 2.5}}, InvalidParameter, "temperature"),
        ({"params": {"temperature": -0.1}}, InvalidParameter, "temperature"),
        ({"params": {"top_p": 0}}, InvalidParameter, "top_p"),
        ({"params": {"top_p": 1.5}}, InvalidParameter, "top_p"),
        ({"params": {"max_tokens": 0}}, InvalidParameter, "max_tokens"),
        ({"params": {"max_tokens": 5000}}, InvalidParameter, "max_tokens"),
        ({"params": {"max_tokens": 4096}}, InvalidParameter, "does not fit the context"),
        ({"variables": {"nope": 1}}, TemplateError, "no variable 'nope'"),
        ({"output": Path("d.txt")}, OutputError, "unknown output format"),
    ],
)
async def test_bad_input_changes_nothing(
    tmp_path: Path, change: dict[str, object], error: type[Exception], message: str
) -> None:
    existing = tmp_path / "d.jsonl"
    existing.write_text('{"keep": "me"}\n')
    fields = {"count": 3, "output": existing, **change}
    if isinstance(fields["output"], Path) and not fields["output"].is_absolute():
        fields["output"] = tmp_path / fields["output"]
    backend = FakeBackend()
    with pytest.raises(error, match=message):
        await DatasetPipeline(backend).run(
            DatasetRequest(template=LIBRARY.get("product-review"), **fields)  # type: ignore[arg-type]
        )
    assert backend.calls == 0
    assert existing.read_text() == '{"keep": "me"}\n'


async def test_output_in_a_directory_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        await DatasetPipeline(FakeBackend()).run(request(blocker / "d.jsonl", 2))


async def test_jsonl_lines_are_plain_json(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    await DatasetPipeline(FakeBackend()).run(request(out, 2))
    for line in out.read_text().splitlines():
        assert json.loads(line)["provenance"]["template_id"] == "product-review"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": "qa-pairs"}, "template 'product-review'"),
        ({"seed": 8}, "another run seed"),
        ({"params": {"max_tokens": 32}}, "max_tokens 160, not 32"),
        ({"params": {"temperature": 0.1}}, "temperature"),
        ({"variables": {"rating": 1}}, "rating="),
        ({"count": 5}, "would delete them"),
    ],
)
@pytest.mark.parametrize("where", ["journal", "file"])
async def test_a_resume_of_another_run_is_refused_and_changes_nothing(
    tmp_path: Path, change: dict[str, object], message: str, where: str
) -> None:
    out = tmp_path / "d.jsonl"
    await interrupted_run(request(out, 12, concurrency=2, seed=3), after=8)
    if where == "file":
        journal_path(out).unlink()  # only the dataset file is left to resume from
    before = out.read_bytes()
    journal = journal_path(out).read_bytes() if where == "journal" else None
    fields: dict[str, object] = {"count": 12, "seed": 3, "resume": True, **change}
    template = str(fields.pop("template", "product-review"))
    backend = FakeBackend()
    with pytest.raises(Conflict, match=message) as refused:
        await DatasetPipeline(backend).run(request(out, template=template, **fields))  # type: ignore[arg-type]
    assert "\n" not in refused.value.message
    assert backend.calls == 0
    assert out.read_bytes() == before
    if journal is not None:
        assert journal_path(out).read_bytes() == journal
    else:
        assert not journal_path(out).exists()


async def test_a_resume_without_the_var_given_before_is_refused(tmp_path: Path) -> None:
    """The resumed records would sample the variable the first ones were given."""
    out = tmp_path / "d.jsonl"
    await interrupted_run(request(out, 12, seed=3, variables={"category": "books"}), after=4)
    with pytest.raises(Conflict, match="has category='books', not"):
        await DatasetPipeline(FakeBackend()).run(request(out, 12, seed=3, resume=True))


async def test_a_resume_with_the_same_request_and_another_concurrency_continues(
    tmp_path: Path,
) -> None:
    """The pipeline's part of reproducibility: prompts, variables and seeds depend only on the
    run seed and the index, so a resumed run equals an uninterrupted one record for record when
    the backend answers a request the same way (the fake does; llama.cpp at concurrency 1)."""
    whole, resumed = tmp_path / "whole.jsonl", tmp_path / "resumed.jsonl"
    await DatasetPipeline(FakeBackend()).run(request(whole, 20, concurrency=1, seed=9))
    await interrupted_run(request(resumed, 20, concurrency=5, seed=9), after=7)
    await DatasetPipeline(FakeBackend()).run(
        request(resumed, 20, concurrency=3, seed=9, resume=True)
    )
    a, b = read_dataset(whole), read_dataset(resumed)
    assert [r.index for r in b] == list(range(20))
    assert [(r.text, r.variables, r.provenance.seed, r.provenance.params) for r in a] == [
        (r.text, r.variables, r.provenance.seed, r.provenance.params) for r in b
    ]


async def test_an_undefined_template_variable_fails_before_any_request(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nuser: 'Hello {{ nobody }}'\n")
    template = TemplateLibrary.load().get(str(broken))
    existing = tmp_path / "d.jsonl"
    existing.write_text('{"keep": "me"}\n')
    backend = FakeBackend()
    with pytest.raises(TemplateError, match="'nobody' is undefined"):
        await DatasetPipeline(backend).run(
            DatasetRequest(template=template, count=3, output=existing)
        )
    assert backend.calls == 0 and existing.read_text() == '{"keep": "me"}\n'


async def test_a_record_failure_is_raised_as_itself_not_as_a_group(tmp_path: Path) -> None:
    class Failing(FakeBackend):
        async def complete(self, request: object) -> Completion:  # type: ignore[override]
            raise InvalidParameter("the backend refused this request")

    with pytest.raises(InvalidParameter, match="refused"):
        await DatasetPipeline(Failing()).run(request(tmp_path / "d.jsonl", 1, concurrency=1))


@pytest.mark.parametrize(
    ("output", "message"),
    [("{tmp}/missing/d.jsonl", "missing does not exist"), ("/proc/d.jsonl", "cannot write")],
)
async def test_an_output_outside_an_existing_directory_is_refused(
    tmp_path: Path, output: str, message: str
) -> None:
    """An absolute path's directory must exist (``/nonexistent-dir/x.jsonl`` made a tree)."""
    with pytest.raises(OutputError, match=message):
        await DatasetPipeline(FakeBackend()).run(request(Path(output.format(tmp=tmp_path)), 1))
    assert not (tmp_path / "missing").exists()


async def test_a_relative_output_may_name_new_directories(tmp_path: Path) -> None:
    await DatasetPipeline(FakeBackend()).run(request(Path("out/sub/d.jsonl"), 2))
    assert indices(tmp_path / "out/sub/d.jsonl") == [0, 1]  # the working directory is tmp_path
