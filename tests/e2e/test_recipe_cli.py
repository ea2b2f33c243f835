"""``textnlp generate -r RECIPE`` as a user runs it: a real process, the real embedded model.

Malformed recipes and impossible budgets are refused with one line, exit 2, nothing written;
a run killed with SIGKILL resumes to exactly ``--count`` accepted records, each index once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

TEXTNLP = [sys.executable, "-m", "textnlp.cli.main"]

#: A recipe that runs on the embedded model: a sampler-only filter rejects about a quarter of
#: the candidates (before their llm cell is called), one short llm column.
TOPICS = """\
id: e2e-topics
columns:
  topic: {type: category, values: [tea, rain, maps, bikes, jazz]}
  urgent: {type: bernoulli, p: 0.25}
  line:
    type: llm-text
    prompt: "Write one short sentence about {{ topic }}."
    params: {max_tokens: 16}
  keep: {type: filter, rule: expression, expr: "not urgent"}
"""

#: Recipes each with one problem, and what the one line says about it.
BAD_RECIPES: dict[str, tuple[str, str]] = {
    "cycle": (
        "id: loop\ncolumns:\n"
        "  a: {type: llm-text, prompt: 'Use {{ b }}'}\n"
        "  b: {type: llm-text, prompt: 'Use {{ a }}'}\n",
        "columns form a cycle: a -> b -> a",
    ),
    "unknown-column": (
        "id: typo\ncolumns:\n"
        "  topic: {type: category, values: [tea]}\n"
        "  q: {type: llm-text, prompt: 'About {{ topik }}'}\n",
        "column 'q' reads 'topik', which is not a column (columns: topic, q)",
    ),
    "unknown-sampler": (
        "id: zipf\ncolumns:\n  n: {type: zipf, a: 2}\n  q: {type: llm-text, prompt: 'x'}\n",
        "Input tag 'zipf' found using 'type' does not match",
    ),
    "bad-sampler-parameter": (
        "id: prob\ncolumns:\n  u: {type: bernoulli, p: 1.5}\n  q: {type: llm-text, prompt: 'x'}\n",
        "columns.u.bernoulli.p: Input should be less than or equal to 1",
    ),
    "missing-seed-file": (
        "id: seeded\ncolumns:\n"
        "  task: {type: seed, path: nowhere.jsonl}\n"
        "  q: {type: llm-text, prompt: 'About {{ task.topic }}'}\n",
        "seed file nowhere.jsonl does not exist",
    ),
    "seed-field-missing": (
        "id: seeded\ncolumns:\n"
        "  task: {type: seed, path: tasks.jsonl}\n"
        "  q: {type: llm-text, prompt: 'About {{ task.topic }} for {{ task.audience }}'}\n",
        "column 'q' reads task.audience, but 'task' has no field 'audience' (fields: topic)",
    ),
    "rubric-without-scores": (
        "id: judged\ncolumns:\n"
        "  q: {type: llm-text, prompt: 'A tip'}\n"
        "  score: {type: llm-judge, prompt: 'Rate {{ q }}', rubric: {helpful: {description: x}}}\n",
        "columns.score.llm-judge.rubric.helpful.scores: Field required",
    ),
    # PyYAML kept the second `topic` silently.
    "key-given-twice": (
        "id: twice\ncolumns:\n"
        "  topic: {type: category, values: [tea]}\n"
        "  topic: {type: category, values: [rain]}\n"
        "  q: {type: llm-text, prompt: 'About {{ topic }}'}\n",
        "key 'topic' is given twice (line 4, column 3)",
    ),
    # PyYAML's ValueError ("month must be in 1..12") was a traceback.
    "impossible-date": (
        "id: dated\ncolumns:\n"
        "  day: {type: datetime, start: 2024-13-01, end: 2024-12-31}\n"
        "  q: {type: llm-text, prompt: 'On {{ day }}'}\n",
        "'2024-13-01' is not a valid date or time (month must be in 1..12)",
    ),
}


def textnlp(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TEXTNLP, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120"},
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def one_line_exit_2(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        *[([f"{name}.yaml", "-n", "3"], message) for name, (_, message) in BAD_RECIPES.items()],
        (["topics.yaml", "-n", "5", "--max-candidates", "4"], "--max-candidates 4 cannot give 5"),
    ],
    ids=[*BAD_RECIPES, "count-beyond-max-candidates"],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    for name, (text, _) in BAD_RECIPES.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    (tmp_path / "topics.yaml").write_text(TOPICS)
    (tmp_path / "tasks.jsonl").write_text('{"topic": "tea"}\n{"topic": "rain"}\n')
    recipe, *rest = args

    fresh = textnlp("generate", "-r", recipe, *rest, "-o", "new.jsonl", cwd=tmp_path)
    one_line_exit_2(fresh, message)
    assert not (tmp_path / "new.jsonl").exists()
    assert not (tmp_path / "new.jsonl.partial.jsonl").exists()

    kept = tmp_path / "keep.jsonl"
    kept.write_bytes(b'{"precious": true}\n')
    again = textnlp(
        "generate", "-r", recipe, *rest, "-o", "keep.jsonl", "--rejects", "rej.jsonl", cwd=tmp_path
    )
    one_line_exit_2(again, message)
    assert kept.read_bytes() == b'{"precious": true}\n'
    assert not (tmp_path / "rej.jsonl").exists()
    assert not (tmp_path / "keep.jsonl.partial.jsonl").exists()


def test_lists_show_a_users_descriptions_as_text(tmp_path: Path) -> None:
    """A description with "[/]" stopped `recipes list` and `templates list` with Rich's
    MarkupError traceback; "[bold]" was drawn as markup."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "marked.yaml").write_text(
        'id: marked\ndescription: "[/] see [bold]this[/bold]"\n'
        "columns:\n  topic: {type: category, values: [tea]}\noutput: topic\n"
    )
    (mine / "plain.yaml").write_text('id: plain\ndescription: "[/] a [red]template"\nuser: hi\n')
    env = {**os.environ, "COLUMNS": "200", "TEXTNLP_TEMPLATES_DIR": str(mine)}
    for command, shown in (
        ("recipes", "[/] see [bold]this[/bold]"),
        ("recipes", "[/] a [red]template"),
        ("templates", "[/] a [red]template"),
    ):
        listed = subprocess.run(
            [*TEXTNLP, command, "list"], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert listed.returncode == 0, listed.stderr
        assert shown in listed.stdout


#: 30 accepted records at 4 records at once; the cache off, so each run really generates.
RUN = ["generate", "-r", "topics.yaml", "-n", "30", "-c", "4", "--seed", "5", "--no-cache"]


def _wait_for_records(journal: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 450
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise TimeoutError("the run journaled no records in time")


@pytest.mark.timeout(1200)  # three runs of the embedded model; a loaded machine is slow
def test_a_killed_recipe_run_resumes_to_exactly_count_records(tmp_path: Path) -> None:
    (tmp_path / "topics.yaml").write_text(TOPICS)
    clean = textnlp(*RUN, "-o", "clean.jsonl", cwd=tmp_path, timeout=600)
    assert clean.returncode == 0, clean.stderr

    journal = tmp_path / "out.jsonl.partial.jsonl"
    proc = subprocess.Popen(
        [*TEXTNLP, *RUN, "-o", "out.jsonl"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_records(journal, 8, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    # The last line may be torn by the kill (the resume cuts it off).
    before = [json.loads(line) for line in journal.read_text().splitlines()[:-1]]
    assert [r["index"] for r in before] == list(range(len(before)))  # committed in index order

    resumed = textnlp(*RUN, "-o", "out.jsonl", "--resume", cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert not journal.exists()
    got, want = records(tmp_path / "out.jsonl"), records(tmp_path / "clean.jsonl")
    assert len(got) == 30 and all(r["status"] == "ok" for r in got)
    assert len({r["index"] for r in got}) == 30
    assert all(r["variables"]["urgent"] is False for r in got)
    # Which candidates pass depends only on the seed: the same indices, the same samples, the
    # same sampling seeds as the clean run.
    assert [r["index"] for r in got] == [r["index"] for r in want]
    assert [r["variables"] for r in got] == [r["variables"] for r in want]
    assert [r["provenance"]["seed"] for r in got] == [r["provenance"]["seed"] for r in want]
    cells = [r["provenance"]["cells"]["line"] for r in got]
    assert [c["seed"] for c in cells] == [r["provenance"]["cells"]["line"]["seed"] for r in want]
    assert all(0 < c["completion_tokens"] <= 16 for c in cells)
    assert all(r["text"].strip() and r["text"] == r["data"]["line"] for r in got)
    # Every record once: what was accepted before the kill is kept as it was, not made again.
    by_index = {r["index"]: r for r in got}
    for record in before:
        if record["status"] == "ok":
            assert by_index[record["index"]]["text"] == record["text"]
            assert by_index[record["index"]]["provenance"] == record["provenance"]
    # The texts are not compared with the clean run's: at -c 4 the embedded engine decodes
    # several records in one batch, and which records share a batch changes floating point
    # results, so a text may differ from the token where a sample flips (README, "What is
    # reproducible"; issue 18 saw 5 of 40 records of a resumed job differ). Here the batches
    # differ by construction: the resumed run starts mid-way with other neighbours. (In the
    # runs made while writing this test all 30 texts matched; text equality at -c 1 is
    # test_generate_cli.py's test_at_concurrency_1_a_killed_and_resumed_run_equals_...)
