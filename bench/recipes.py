"""Dataset recipes: TextNLP's recipe engine against the plain loop a user would write.

The recipe (``bench/recipes_bench.yaml``): a category sampler, a generator column (``review``,
llm-text, 96 tokens) and a judge column over it (``quality``, llm-judge, two criteria, 12
tokens each), on the embedded SmolLM2-135M, until ``--count`` records are made (a record
whose judge never gives a score in its scale fails and another candidate is made, on both
sides alike). Measured in one run, one side at a time, ``--threads`` (2) on both sides:

1. records/s of ``textnlp.agenerate_dataset`` on the recipe (the library call, the same path
   as ``textnlp generate -r``), cold, with the response cache off, against the same work
   written as the plain llama-cpp-python loop: one ``Llama`` on the shipped GGUF, record after
   record, column after column, each call waiting for the one before. Target: >= 2x (from
   batching across records: up to 32 candidates in flight, a record's two criteria at once).
2. The cost of re-running after editing only the judge (its rubric's wording) with the
   response cache on: the edited re-run's time over a cold run's with the cache on (a fresh
   cache and prefix store). The generator's cells come from the response cache; only the
   judge runs, its prompts starting from the KV states the cold run left in the prefix store
   (the review comes before the edited rubric). Target: <= 0.6x. It is measured twice, with
   two different edits, each against the same cold run.

The baseline does what the recipe asks, call for call: the same rendered prompts (taken from
the recipe's own column objects, so both sides read the same text), the same max_tokens,
temperature, top-p and per-cell seeds (``cell_seed``; seed + attempt on a retry), and the same
judge protocol: one request per criterion, the answer begun for the model ("Score:", a
prefill) and decoded under the judge's grammar (``LlmJudge.criterion_grammar``, through
llama-cpp-python's ``LlamaGrammar``, as TextNLP's engine decodes it: a score in the scale,
then a reason), the score read by the judge's own parser, up to ``retries`` more attempts
when it does not parse. ``create_chat_completion``
cannot prefill an answer, so the user renders the prompt with the GGUF's own chat template
(llama-cpp-python's ``Jinja2ChatFormatter``, what ``create_chat_completion`` uses inside) and calls
``create_completion`` on it plus the prefill; the generator's call is a plain
``create_chat_completion``. Sampling as TextNLP's engine samples (top-k 40, top-p,
temperature; ``min_p=0`` and ``repeat_penalty=1``, which llama-cpp-python would otherwise add).
The baseline reads the shipped Q4_1 weights as a user would (one sequence at a time it is a
little faster than TextNLP's Q8_0 re-encoding, see bench/RESULTS.md "Engine"), and keeps
llama-cpp-python's reuse of the previous prompt's prefix (a record's judge calls share most
of their prompt). The two sides sample their own tokens (different samplers, same seeds), so
the texts and the number of judge retries differ: the JSON gives each side's candidates and
tokens to read the times by.

Both sides are timed from the call to the last record, the model's load included (the page
cache is warm for both: the baseline runs first and the re-encoded weights are cached). The
baseline runs in a thread of its own that ends before TextNLP starts (llama.cpp's OpenMP keeps
a thread pool per calling thread; see bench/engine.py). Everything is written under a temporary
TEXTNLP_HOME (database, response cache, outputs); the re-encoded weights are read from (and, the
first time, written to) the usual ``~/.cache/textnlp/models``.

Noise: TextNLP's cold rate is measured twice (cache off for the ratio, cache on as the
denominator of 2; the cache's writes are a small part), the edited re-run twice, and the
baseline's rate is given for each half of its records; ``noise`` is the largest relative
spread among those pairs.

    python bench/recipes.py [--count 200] [--quick] [--threads 2] [--seed 0]

About 17 minutes on a quiet 2-core machine at the default 200 records (the judge's grammar
makes every candidate pass; before it, over an hour); ``--quick`` makes 20. llama.cpp's
threads spin-wait: with other llama.cpp processes on the same cores every figure here
collapses (the JSON gives the load average before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

import yaml

from textnlp.backends.llamacpp import resolve_model_path
from textnlp.backends.registry import BUILTIN_CATALOGUE, read_catalogue_file
from textnlp.config import Settings, load_settings
from textnlp.generation.pipeline import DatasetSummary
from textnlp.generation.recipes.base import cell_seed
from textnlp.generation.recipes.columns import LlmJudge, LlmText
from textnlp.generation.recipes.recipe import Recipe, parse_recipe
from textnlp.library import agenerate_dataset

MODEL = "smollm2-135m"
RECIPE = Path(__file__).resolve().parent / "recipes_bench.yaml"
GENERATOR, JUDGE = "review", "quality"
COLUMNS = (GENERATOR, JUDGE)
#: The judge edits of the cached re-runs: only the rubric's wording changes.
EDITS = (
    {"relevance": "how closely the review sticks to the product", "fluency": "how well it reads"},
    {"relevance": "does the review talk about this product", "fluency": "is it well written"},
)


# -- the baseline: the plain llama-cpp-python loop ------------------------------------------------
def plain_loop(recipe: Recipe, count: int, seed: int, threads: int, out: Path) -> dict[str, Any]:
    """Run ``_plain_loop`` in a thread of its own that ends before TextNLP runs."""
    result: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: result.update(_plain_loop(recipe, count, seed, threads, out))
    )
    worker.start()
    worker.join()
    return result


def _plain_loop(recipe: Recipe, count: int, seed: int, threads: int, out: Path) -> dict[str, Any]:
    from llama_cpp import Llama, LlamaGrammar
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    generator, judge = recipe.columns[GENERATOR], recipe.columns[JUDGE]
    assert isinstance(generator, LlmText) and isinstance(judge, LlmJudge)
    gen_params = {**recipe.defaults, **generator.params}
    judge_params = {**recipe.defaults, **judge.params}
    sampler_column = recipe.columns["product"]
    tokens = {"prompt": 0, "completion": 0}
    candidates = failed = 0
    halves: list[float] = []

    def sampling(params: dict[str, Any], cell: int) -> dict[str, Any]:
        return {
            "max_tokens": params["max_tokens"],
            "temperature": params["temperature"],
            "top_p": params["top_p"],
            "top_k": 40,
            "min_p": 0.0,
            "repeat_penalty": 1.0,
            "seed": cell % 2**32,
        }

    def count_usage(answer: Any) -> str:
        tokens["prompt"] += answer["usage"]["prompt_tokens"]
        tokens["completion"] += answer["usage"]["completion_tokens"]
        return str(answer["choices"][0].get("text") or answer["choices"][0]["message"]["content"])

    started = time.perf_counter()
    llm = Llama(
        model_path=str(resolve_model_path("embedded:smollm2")),
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    chatml = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=llm.detokenize([llm.token_eos()]).decode(),
        bos_token=llm.detokenize([llm.token_bos()]).decode(),
    )
    accepted = 0
    with out.open("w") as sink:
        while accepted < count:
            index = candidates
            candidates += 1
            row: dict[str, Any] = {"product": _sample(sampler_column, seed, index)}
            record: dict[str, Any] = {"index": index, "variables": dict(row)}
            messages = [{"role": m.role, "content": m.content} for m in generator.messages(row)]
            answer = llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                **sampling(gen_params, cell_seed(seed, index, GENERATOR)),
            )
            review = count_usage(answer).strip()
            if not review:
                failed += 1
                sink.write(json.dumps({**record, "status": "failed"}) + "\n")
                continue
            row[GENERATOR] = review
            scores: dict[str, Any] = {}
            for criterion in judge.rubric:
                *chat, prefill = judge.criterion_messages(criterion, row, constrained=True)
                gbnf = judge.criterion_grammar(criterion)
                assert gbnf is not None
                grammar = LlamaGrammar.from_string(gbnf, verbose=False)
                prompt = chatml(messages=[{"role": m.role, "content": m.content} for m in chat])
                base = cell_seed(seed, index, f"{JUDGE}.{criterion}")
                for attempt in range(judge.retries + 1):
                    answer = llm.create_completion(
                        prompt.prompt + prefill.content,
                        grammar=grammar,
                        **sampling(judge_params, base + attempt),
                    )
                    try:
                        scores[criterion] = judge.parse_score(criterion, count_usage(answer))
                        break
                    except ValueError:
                        continue
                else:
                    break  # this criterion never scored: the record fails
            if len(scores) < len(judge.rubric):
                failed += 1
                sink.write(json.dumps({**record, "status": "failed"}) + "\n")
                continue
            accepted += 1
            row[JUDGE] = scores
            sink.write(json.dumps({**record, "status": "ok", "data": row}) + "\n")
            if accepted == count // 2:
                halves.append(time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    halves.append(elapsed - halves[0] if halves else elapsed)
    llm.close()
    return {
        "seconds": elapsed,
        "records": accepted,
        "candidates": candidates,
        "failed": failed,
        "prompt_tokens": tokens["prompt"],
        "completion_tokens": tokens["completion"],
        "half_rates": [
            round((count // 2) / halves[0], 3),
            round((count - count // 2) / halves[1], 3),
        ]
        if len(halves) == 2
        else [],
    }


def _sample(column: Any, seed: int, index: int) -> Any:
    """The sampler column's value, as TextNLP samples it (the same prompts on both sides)."""
    from textnlp.generation.recipes.base import CellContext

    return column.sample(CellContext(seed=seed, index=index, column="product", row={}))


# -- TextNLP --------------------------------------------------------------------------------------
async def textnlp_run(
    settings: Settings, recipe: Path, count: int, seed: int, out: Path
) -> tuple[float, DatasetSummary]:
    started = time.perf_counter()
    summary = await agenerate_dataset(str(recipe), count, out, seed=seed, settings=settings)
    return time.perf_counter() - started, summary


def side(seconds: float, summary: DatasetSummary, out: Path) -> dict[str, Any]:
    acceptance = summary.acceptance or {}
    cells = cached = 0
    for line in out.read_text().splitlines():
        record = json.loads(line)
        cell = (record["provenance"].get("cells") or {}).get(GENERATOR)
        if cell is not None:
            cells += 1
            cached += bool(cell["cached"])
    return {
        "seconds": round(seconds, 2),
        "records": summary.written,
        "records_per_s": round(summary.written / seconds, 3),
        "candidates": acceptance.get("candidates"),
        "failed": acceptance.get("failed"),
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "generator_cells_from_cache": f"{cached}/{cells}",
    }


def edited(raw: dict[str, Any], wording: dict[str, str], path: Path) -> Path:
    """The recipe with only the judge's rubric descriptions reworded."""
    copy = json.loads(json.dumps(raw))
    for criterion, description in wording.items():
        copy["columns"][JUDGE]["rubric"][criterion]["description"] = description
    path.write_text(yaml.safe_dump(copy, sort_keys=False))
    return path


def home_settings(root: Path, threads: int, *, cache: bool, **options: Any) -> Settings:
    """Settings under a fresh home; the model's catalogue entry with ``threads`` threads (and
    any other engine ``options``)."""
    root.mkdir(parents=True)
    entry = next(s for s in read_catalogue_file(BUILTIN_CATALOGUE) if s.id == MODEL)
    spec = entry.model_dump(mode="json", exclude_none=True)
    spec["options"] = {**spec.get("options", {}), "n_threads": threads, **options}
    models = root / "models.yaml"
    models.write_text(yaml.safe_dump({"models": [spec]}))
    return load_settings(home=root, models_file=models, generation={"response_cache": cache})


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 records: a smoke run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = 20 if args.quick else args.count
    raw = yaml.safe_load(RECIPE.read_text())
    recipe = parse_recipe(raw, source=str(RECIPE))
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = plain_loop(recipe, count, args.seed, args.threads, tmp / "plain.jsonl")
        off = home_settings(tmp / "home-nocache", args.threads, cache=False)
        cold_s, cold = asyncio.run(textnlp_run(off, RECIPE, count, args.seed, tmp / "cold.jsonl"))
        cold_side = side(cold_s, cold, tmp / "cold.jsonl")
        on = home_settings(tmp / "home-cache", args.threads, cache=True)
        cached_s, cached = asyncio.run(
            textnlp_run(on, RECIPE, count, args.seed, tmp / "cached.jsonl")
        )
        cached_side = side(cached_s, cached, tmp / "cached.jsonl")
        reruns = []
        for number, wording in enumerate(EDITS):
            path = edited(raw, wording, tmp / f"edited-{number}.yaml")
            out = tmp / f"edited-{number}.jsonl"
            seconds, summary = asyncio.run(textnlp_run(on, path, count, args.seed, out))
            reruns.append(side(seconds, summary, out))
    load_after = load_average()
    base_rate = base["records"] / base["seconds"]
    ratio = cold_side["records_per_s"] / base_rate
    rerun_ratios = [r["seconds"] / cached_side["seconds"] for r in reruns]
    pairs = [
        (cold_side["records_per_s"], cached_side["records_per_s"]),
        (reruns[0]["seconds"], reruns[1]["seconds"]),
        tuple(base["half_rates"]) or (1.0, 1.0),
    ]
    noise = max(abs(a - b) / min(a, b) for a, b in pairs)
    targets = {
        "records_per_s_ratio": {"value": round(ratio, 3), "target": ">= 2.0", "ok": ratio >= 2.0},
        "edited_rerun_over_cold": {
            "value": round(max(rerun_ratios), 3),
            "target": "<= 0.6",
            "ok": max(rerun_ratios) <= 0.6,
        },
    }
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.system()}",
                "load_average_1min": {"before": load_before, "after": load_after},
                "recipe": "bench/recipes_bench.yaml",
                "model": MODEL,
                "records": count,
                "threads": args.threads,
                "seed": args.seed,
                "max_tokens": {
                    name: raw["columns"][name]["params"]["max_tokens"] for name in COLUMNS
                },
                "plain_loop": {
                    **{k: v for k, v in base.items() if k != "seconds"},
                    "seconds": round(base["seconds"], 2),
                    "records_per_s": round(base_rate, 3),
                },
                "textnlp_cold_nocache": cold_side,
                "textnlp_cold_cache_on": cached_side,
                "textnlp_judge_edited_reruns": reruns,
                "ratio_records_per_s": round(ratio, 3),
                "edited_rerun_over_cold": [round(r, 3) for r in rerun_ratios],
                "noise": round(noise, 3),
                "targets": {**targets, "ok": all(t["ok"] for t in targets.values())},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
