"""Every built-in recipe run as a user runs it: ``textnlp generate -r ID``, the embedded model.

The runs share one TEXTNLP_HOME (its response cache), so the dataset-directory exports at the
end reuse the cells their JSONL runs already generated and cost little more than the export.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from textnlp.generation.export import DATA_FILE
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.templates import TemplateLibrary

pytestmark = pytest.mark.slow

TEXTNLP = [sys.executable, "-m", "textnlp.cli.main"]
BUILTIN = (
    "evol-instruct",
    "magpie",
    "persona-qa",
    "preference-pairs",
    "product-reviews",
    "self-instruct",
    "support-chat",
)
COUNT = 3
SEED = "5"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("builtin-recipes-home")


def generate(
    recipe_id: str, out: str, *, cwd: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTNLP_")}
    return subprocess.run(
        [*TEXTNLP, "generate", "-r", recipe_id, "-n", str(COUNT), "-o", out, "--seed", SEED],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "TEXTNLP_HOME": str(home), "COLUMNS": "200"},
    )


def recipe(recipe_id: str) -> Recipe:
    found = TemplateLibrary.load().source(recipe_id)
    assert isinstance(found, Recipe)
    return found


@pytest.mark.parametrize("recipe_id", BUILTIN)
def test_a_builtin_recipe_makes_exactly_the_records_asked_for(
    recipe_id: str, tmp_path: Path, home: Path
) -> None:
    result = generate(recipe_id, "tmp/x.jsonl", cwd=tmp_path, home=home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    records = [json.loads(line) for line in (tmp_path / "tmp/x.jsonl").read_text().splitlines()]
    assert len(records) == COUNT
    assert {r["status"] for r in records} == {"ok"}
    spec = recipe(recipe_id)
    expected = set(spec.columns) - set(spec.filters())
    for record in records:
        columns = {**record["variables"], **(record["data"] or {})}
        assert expected <= set(columns), expected - set(columns)
        assert record["text"].strip()

    assert re.search(rf"records written\s*│\s*{COUNT} of {COUNT}", result.stdout), result.stdout
    for name in spec.filters():
        assert re.search(rf"filter {re.escape(name)}\s*│\s*[\d.]+% pass", result.stdout), name


def test_the_dialogue_recipe_exports_chat_messages(tmp_path: Path, home: Path) -> None:
    result = generate("support-chat", "tmp/ds/", cwd=tmp_path, home=home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    rows = pq.read_table(tmp_path / "tmp/ds" / DATA_FILE).to_pylist()
    assert len(rows) == COUNT
    for row in rows:
        messages = row["messages"]
        assert len(messages) == recipe("support-chat").columns["dialogue"].turns  # type: ignore[union-attr]
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        assert all(m["content"].strip() for m in messages)
    assert (tmp_path / "tmp/ds/README.md").is_file()


def test_the_preference_recipe_exports_chosen_and_rejected(tmp_path: Path, home: Path) -> None:
    result = generate("preference-pairs", "tmp/ds/", cwd=tmp_path, home=home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    rows = pq.read_table(tmp_path / "tmp/ds" / DATA_FILE).to_pylist()
    assert len(rows) == COUNT
    for row in rows:
        assert [m["role"] for m in row["prompt"]] == ["user"]
        assert [m["role"] for m in row["chosen"]] == ["assistant"]
        assert [m["role"] for m in row["rejected"]] == ["assistant"]
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        assert row["total_a"] != row["total_b"]  # ties are filtered out
        winner = row["response_a"] if row["total_a"] > row["total_b"] else row["response_b"]
        assert row["chosen"][0]["content"] == winner.strip()
