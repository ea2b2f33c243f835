"""What a dataset run must never do to files: share an output with another run (its lock),
write over a seed file its recipe reads, discard an interrupted run's progress silently, or
miscount the records of a resumed run."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.support.fake_backend import FakeBackend
from textnlp.errors import Conflict, OutputError
from textnlp.generation.journal import journal_path
from textnlp.generation.output_lock import OutputLock, lock_path
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.recipes.recipe import parse_recipe
from textnlp.generation.seed_guard import check_not_a_seed
from textnlp.generation.sinks import DiscardedProgress
from textnlp.generation.templates import TemplateLibrary
from textnlp.generation.writers import read_dataset

LIBRARY = TemplateLibrary.load()
KEPT = "a line the user keeps\n"


def request(
    out: Path, count: int, template: str = "product-review", **kw: object
) -> DatasetRequest:
    return DatasetRequest(template=LIBRARY.get(template), count=count, output=out, **kw)  # type: ignore[arg-type]


async def interrupted_run(pipeline: DatasetPipeline, req: DatasetRequest, after: int) -> None:
    """Cancelled after ``after`` records, as Ctrl-C does under asyncio.run."""
    seen = 0

    def on_record(_: object) -> None:
        nonlocal seen
        seen += 1
        if seen == after:
            task.cancel()

    task = asyncio.create_task(pipeline.run(req, on_record))
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_second_lock_on_an_output_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    with OutputLock(out), pytest.raises(Conflict) as refused, OutputLock(out):
        pass
    assert f"another run is writing {out} (pid {os.getpid()})" in refused.value.message
    assert not lock_path(out).exists()  # tidied when the holder is done
    with OutputLock(out):  # and free again
        assert lock_path(out).read_text() == f"{os.getpid()}\n"


def test_a_lock_file_left_by_a_killed_run_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    lock_path(out).write_text("999999\n")  # present, but nobody holds its lock
    with OutputLock(out):
        assert lock_path(out).read_text() == f"{os.getpid()}\n"


async def test_a_second_run_on_the_same_output_is_refused_and_the_first_completes(
    tmp_path: Path,
) -> None:
    """The audit's data loss: the second run truncated and removed the first's journal."""
    out = tmp_path / "d.jsonl"
    out.write_text(KEPT)
    first = asyncio.create_task(
        DatasetPipeline(FakeBackend(delay_s=0.01)).run(request(out, 12, concurrency=2, seed=41))
    )
    while not journal_path(out).exists() or not journal_path(out).read_text():
        await asyncio.sleep(0.005)
    journal = journal_path(out).read_text()
    with pytest.raises(Conflict, match="another run is writing"):
        await DatasetPipeline(FakeBackend()).run(request(out, 5, seed=42))
    assert out.read_text() == KEPT  # the refused run changed nothing
    assert journal_path(out).read_text().startswith(journal)
    summary = await first
    assert summary.written == 12
    assert [r.index for r in read_dataset(out)] == list(range(12))
    assert not lock_path(out).exists() and not journal_path(out).exists()


def seeded_recipe(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    seeds = tmp_path / "data" / "seeds.jsonl"
    seeds.write_text('{"topic": "tea"}\n{"topic": "rain"}\n')
    return seeds


RECIPE = {
    "id": "seeded",
    "columns": {
        "task": {"type": "seed", "path": "seeds.jsonl"},
        "line": {"type": "llm-text", "prompt": "About {{ task.topic }}"},
    },
}


@pytest.mark.parametrize(
    "spelling",
    ["same", "dot", "dotdot", "symlink", "hardlink", "directory"],
)
@pytest.mark.parametrize("noun", ["output", "rejects"])
def test_an_output_that_is_a_seed_file_is_refused(
    tmp_path: Path, spelling: str, noun: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = seeded_recipe(tmp_path)
    recipe = parse_recipe(RECIPE, source=str(tmp_path / "data" / "r.yaml"))
    monkeypatch.chdir(tmp_path / "data")
    target = {
        "same": seeds,
        "dot": Path("./seeds.jsonl"),
        "dotdot": Path("../data/seeds.jsonl"),
        "symlink": tmp_path / "link.jsonl",
        "hardlink": tmp_path / "hard.jsonl",
        "directory": tmp_path / "data",
    }[spelling]
    if spelling == "symlink":
        target.symlink_to(seeds)
    if spelling == "hardlink":
        target.hardlink_to(seeds)
    given = {"output": target, "rejects": None}
    if noun == "rejects":
        given = {"output": tmp_path / "out.jsonl", "rejects": target}
    with pytest.raises(OutputError, match=r"seed file seeds\.jsonl \(column task\)"):
        check_not_a_seed(recipe, **given)


def test_other_outputs_beside_a_seed_file_are_fine(tmp_path: Path) -> None:
    seeded_recipe(tmp_path)
    recipe = parse_recipe(RECIPE, source=str(tmp_path / "data" / "r.yaml"))
    check_not_a_seed(recipe, output=tmp_path / "data" / "out.jsonl", rejects=tmp_path / "rej")
    check_not_a_seed(recipe, output=tmp_path / "seeds.jsonl", rejects=None)  # another directory


async def test_written_and_failed_add_up_to_the_count_after_a_resume(tmp_path: Path) -> None:
    """The audit's count: failures of the run resumed were not counted, yet kept."""
    out = tmp_path / "qa.jsonl"
    # One worker, no retries: the first 3 records answer invalid JSON and fail.
    first = DatasetPipeline(FakeBackend(json_failures=3))
    await interrupted_run(first, request(out, 10, "qa-pairs", concurrency=1, json_retries=0), 5)
    earlier = {r.index: r.status for r in read_dataset(journal_path(out))}
    assert list(earlier.values()) == ["failed"] * 3 + ["ok"] * 2

    summary = await DatasetPipeline(FakeBackend()).run(
        request(out, 10, "qa-pairs", concurrency=1, json_retries=0, resume=True)
    )
    assert (summary.written, summary.failed, summary.resumed) == (7, 3, 2)
    assert summary.written + summary.failed == summary.requested
    assert len(read_dataset(out)) == summary.written


async def test_a_fresh_run_over_an_interrupted_one_warns_before_starting_over(
    tmp_path: Path,
) -> None:
    out = tmp_path / "d.jsonl"
    await interrupted_run(DatasetPipeline(FakeBackend(delay_s=0.001)), request(out, 20), 6)
    unfinished = len(read_dataset(journal_path(out)))
    with pytest.warns(DiscardedProgress) as caught:
        await DatasetPipeline(FakeBackend()).run(request(out, 3))
    assert [w.message.count for w in caught] == [unfinished]  # type: ignore[union-attr]
    assert f"discarding {unfinished} unfinished records of an earlier run of {out}" in str(
        caught[0].message
    )
    assert [r.index for r in read_dataset(out)] == [0, 1, 2]


async def test_an_interruption_before_any_record_leaves_no_journal(tmp_path: Path) -> None:
    """Nothing to resume: the output stays as it was and no empty journal invites --resume."""
    out = tmp_path / "d.jsonl"
    out.write_text(KEPT)
    task = asyncio.create_task(DatasetPipeline(FakeBackend(delay_s=30)).run(request(out, 2)))
    while not lock_path(out).exists():
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)  # the run is waiting on its first records
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert out.read_text() == KEPT
    assert not journal_path(out).exists() and not lock_path(out).exists()


@pytest.mark.parametrize("existing", [True, False])
async def test_a_run_whose_every_record_failed_leaves_the_output_as_it_was(
    tmp_path: Path, existing: bool
) -> None:
    """The audit's emptied dataset: a run of failures wrote an empty file over it."""
    out = tmp_path / "d.jsonl"
    if existing:
        out.write_text(KEPT)
    failing = DatasetPipeline(FakeBackend(json_failures=10**6))
    summary = await failing.run(request(out, 3, "qa-pairs", json_retries=0))
    assert (summary.written, summary.failed) == (0, 3)
    assert not journal_path(out).exists()  # nothing a resume needs: it tries them all again
    if existing:
        assert out.read_text() == KEPT
        return
    assert not out.exists()
    summary = await DatasetPipeline(FakeBackend()).run(request(out, 3, "qa-pairs", resume=True))
    assert (summary.written, summary.resumed) == (3, 0)


async def test_ctrl_c_keeps_an_existing_dataset_and_the_new_records_in_the_journal(
    tmp_path: Path,
) -> None:
    """The audit's replaced dataset: Ctrl-C wrote the new run's few records over the old one."""
    out = tmp_path / "d.jsonl"
    await DatasetPipeline(FakeBackend()).run(request(out, 4, seed=1))
    complete = out.read_text()
    await interrupted_run(DatasetPipeline(FakeBackend(delay_s=0.001)), request(out, 20, seed=2), 5)
    assert out.read_text() == complete  # the old dataset stays until a run completes
    partial = read_dataset(journal_path(out))
    assert len(partial) >= 5

    backend = FakeBackend()
    summary = await DatasetPipeline(backend).run(request(out, 20, seed=2, resume=True))
    assert (summary.resumed, backend.calls) == (len(partial), 20 - len(partial))
    assert [r.index for r in read_dataset(out)] == list(range(20))
    assert not journal_path(out).exists()


async def test_ctrl_c_in_a_resume_of_the_output_itself_writes_the_output(tmp_path: Path) -> None:
    """The output is the run's own: its records and the new ones are one valid file."""
    out = tmp_path / "d.jsonl"
    await DatasetPipeline(FakeBackend()).run(request(out, 4))
    pipeline = DatasetPipeline(FakeBackend(delay_s=0.001))
    await interrupted_run(pipeline, request(out, 20, resume=True), 3)
    assert [r.index for r in read_dataset(out)][:7] == list(range(7))
