"""A judge edited between two runs: the second run starts the judge's prompts from the KV
states of the first, through the library as a user calls it (the real platform, pool and
embedded engine; only the engine's counters are read).

Two ways of re-running. In a new process (``unload_models()`` between the runs stands for it:
the library keeps its engine between calls in one process, ``services.kept_models``), the
second run loads the states the first saved under TEXTNLP_HOME. In the same process (a
notebook), the kept engine still holds them in its streams. Either way the records are those
a fresh engine writes: a record's text does not depend on what ran before it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from textnlp.backends.llamacpp_engine import BatchingEngine
from textnlp.config import load_settings
from textnlp.library import agenerate_dataset, unload_models

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

EDITED = yaml.safe_load(yaml.safe_dump(RECIPE))
EDITED["columns"]["quality"]["rubric"]["fluency"]["description"] = "is it well written"


@dataclass
class Engines:
    started: list[BatchingEngine] = field(default_factory=list)
    #: Each engine's counters as it closes.
    closed: list[dict[str, int]] = field(default_factory=list)


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engines]:
    seen = Engines()
    init, close = BatchingEngine.__init__, BatchingEngine.close

    def spying_init(engine: BatchingEngine, *args: Any, **kwargs: Any) -> None:
        init(engine, *args, **kwargs)
        seen.started.append(engine)

    def spying_close(engine: BatchingEngine) -> None:
        seen.closed.append(dict(engine.counters))
        close(engine)

    monkeypatch.setattr(BatchingEngine, "__init__", spying_init)
    monkeypatch.setattr(BatchingEngine, "close", spying_close)
    unload_models()  # none kept from another test
    yield seen
    unload_models()


async def run(
    home: Path, recipe: dict[str, Any], out: Path, *, new_process: bool = True, **generation: Any
) -> list[dict[str, Any]]:
    """Run ``recipe`` for 4 records into ``out``; its records without their provenance (which
    holds latencies). ``new_process``: the engine is closed after, as at a script's end."""
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(recipe))
    settings = load_settings(home=home, generation=generation)
    await agenerate_dataset(str(path), 4, out, seed=3, settings=settings)
    if new_process:
        unload_models()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return [{k: v for k, v in record.items() if k != "provenance"} for record in records]


async def test_an_edited_judge_loads_the_unchanged_start_of_its_prompts(
    tmp_path: Path, engines: Engines
) -> None:
    await run(tmp_path / "home", RECIPE, tmp_path / "first.jsonl")
    (first,) = engines.closed
    assert first["prompts_saved"] >= 4 and first["prompt_tokens_loaded"] == 0
    assert list((tmp_path / "home" / "cache" / "prompt-kv").glob("*/*.kv"))

    await run(tmp_path / "home", EDITED, tmp_path / "second.jsonl")
    second = engines.closed[1]
    # The generator's cells came from the response cache; the judge's prompts start from the
    # states of the first run (system prompt, product and review), and only the rubric is new.
    assert second["prompt_tokens_loaded"] > second["prompt_tokens_computed"]


async def test_in_one_process_the_kept_engine_reuses_the_prompts_and_writes_the_same_records(
    tmp_path: Path, engines: Engines
) -> None:
    """A notebook's re-run after the edit: one engine serves both runs, and the judge's prompts
    start from what it kept of the first run (in its streams or its store) rather than being
    computed again. The records of both runs are those of two runs in new processes."""
    kept = tmp_path / "kept"
    first = await run(kept, RECIPE, tmp_path / "k1.jsonl", new_process=False)
    (engine,) = engines.started
    before = dict(engine.counters)
    second = await run(kept, EDITED, tmp_path / "k2.jsonl", new_process=False)
    assert engines.started == [engine] and not engines.closed  # kept, not loaded again
    used = {name: engine.counters[name] - before[name] for name in before}
    reused = sum(used[name] for name in ("prompt_tokens_kept", "prompt_tokens_copied"))
    assert reused + used["prompt_tokens_loaded"] > used["prompt_tokens_computed"]
    unload_models()

    fresh = tmp_path / "fresh"
    assert await run(fresh, RECIPE, tmp_path / "f1.jsonl") == first
    assert await run(fresh, EDITED, tmp_path / "f2.jsonl") == second
    assert len(engines.started) == 3  # the kept one, then one per new process


async def test_without_the_response_cache_no_state_is_kept(
    tmp_path: Path, engines: Engines
) -> None:
    await run(tmp_path / "home", RECIPE, tmp_path / "out.jsonl", response_cache=False)
    assert engines.closed[0]["prompts_saved"] == 0
    assert not (tmp_path / "home" / "cache" / "prompt-kv").exists()
