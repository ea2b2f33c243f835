"""A judge edited between two runs: the second run loads the reviews' prompt states the first
run saved under TEXTNLP_HOME, through the library as a user calls it (the real platform, pool
and embedded engine; only the engine's counters are read, when it closes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from textnlp.backends.llamacpp_engine import BatchingEngine
from textnlp.config import load_settings
from textnlp.library import agenerate_dataset

RECIPE: dict[str, Any] = {
    "id": "judged",
    "model": "smollm2-135m",
    "columns": {
        "product": {"type": "category", "values": ["a kettle", "a desk lamp", "a backpack"]},
        "review": {
            "type": "llm-text",
            "prompt": "Write a detailed customer review of {{ product }}.",
            "params": {"max_tokens": 64, "temperature": 0.7},
        },
        "quality": {
            "type": "llm-judge",
            "prompt": "Product: {{ product }}\nReview: {{ review }}",
            "rubric": {
                "fluency": {"description": "how well it reads", "scores": {1: "bad", 5: "good"}}
            },
            "params": {"max_tokens": 8, "temperature": 0.7},
        },
    },
}


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    """Each engine's counters as it closes (one engine per run)."""
    seen: list[dict[str, int]] = []
    close = BatchingEngine.close

    def spying_close(engine: BatchingEngine) -> None:
        seen.append(dict(engine.counters))
        close(engine)

    monkeypatch.setattr(BatchingEngine, "close", spying_close)
    return seen


async def run(home: Path, recipe: dict[str, Any], out: Path, **generation: Any) -> None:
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(recipe))
    settings = load_settings(home=home, generation=generation)
    await agenerate_dataset(str(path), 4, out, seed=3, settings=settings)


async def test_an_edited_judge_loads_the_unchanged_start_of_its_prompts(
    tmp_path: Path, counters: list[dict[str, int]]
) -> None:
    await run(tmp_path / "home", RECIPE, tmp_path / "first.jsonl")
    (first,) = counters
    assert first["prompts_saved"] >= 4 and first["prompt_tokens_loaded"] == 0
    assert list((tmp_path / "home" / "cache" / "prompt-kv").glob("*/*.kv"))

    edited = yaml.safe_load(yaml.safe_dump(RECIPE))
    edited["columns"]["quality"]["rubric"]["fluency"]["description"] = "is it well written"
    await run(tmp_path / "home", edited, tmp_path / "second.jsonl")
    second = counters[1]
    # The generator's cells came from the response cache; the judge's prompts start from the
    # states of the first run (system prompt, product and review), and only the rubric is new.
    assert second["prompt_tokens_loaded"] > second["prompt_tokens_computed"]


async def test_without_the_response_cache_no_state_is_kept(
    tmp_path: Path, counters: list[dict[str, int]]
) -> None:
    await run(tmp_path / "home", RECIPE, tmp_path / "out.jsonl", response_cache=False)
    assert counters[0]["prompts_saved"] == 0
    assert not (tmp_path / "home" / "cache" / "prompt-kv").exists()
