"""A recipe as a batch job: ``POST /api/v1/generate/batch`` with ``recipe``, run by a real
worker on the embedded model, exactly ``count`` accepted records in the result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api, make_settings, start_api
from tests.support.platform import run_worker

BATCH = "/api/v1/generate/batch"
STATUS = "/api/v1/generate/status"

# About a third of the candidates are rejected by the filter (the bernoulli column), so a job
# of 6 records needs more than 6 candidates: the job must still end with exactly 6.
RECIPE = """
id: tiny-notes
version: "2"
description: One-line notes about a fruit, some rejected on purpose
columns:
  fruit: {type: category, values: [apple, pear, plum]}
  unlucky: {type: bernoulli, p: 0.35}
  note: {type: llm-text, prompt: "One short sentence about a {{ fruit }}.",
         params: {max_tokens: 8, temperature: 0.7}}
  lucky: {type: filter, rule: expression, expr: "not unlucky"}
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("recipe-jobs")
    recipes = home / "recipes"
    recipes.mkdir()
    (recipes / "tiny-notes.yaml").write_text(RECIPE)
    settings = make_settings(
        home,
        templates_dir=recipes,
        generation={"response_cache": False, "concurrency": 4},
        queue={"chunk_size": 4},
    )
    yield from start_api(settings)


def test_a_recipe_job_ends_with_exactly_count_accepted_records(api: Api) -> None:
    alice = api.headers("alice")
    answer = api.client.post(
        BATCH, json={"recipe": "tiny-notes", "count": 6, "seed": 3}, headers=alice
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()
    run_worker(api.settings)
    done = api.client.get(f"{STATUS}/{job['id']}", headers=alice).json()
    assert done["state"] == "succeeded", done
    assert done["progress"]["done"] == 6  # accepted records, not candidates
    download = api.client.get(f"{STATUS}/{job['id']}/results", headers=alice)
    records = [json.loads(line) for line in download.content.decode().splitlines()]
    assert len(records) == 6
    assert all(r["status"] == "ok" and r["variables"]["unlucky"] is False for r in records)
    assert all(r["provenance"]["cells"]["note"]["model"] == "smollm2-135m" for r in records)
    indices = [r["index"] for r in records]
    assert indices == sorted(set(indices))
    # The candidates between them were rejected by the filter: the first 6 passing indices.
    assert indices[-1] >= 6


def test_recipe_job_bad_input_is_refused_before_queueing(api: Api, tmp_path: Path) -> None:
    alice = api.headers("alice")
    unknown = api.client.post(BATCH, json={"recipe": "no-such", "count": 2}, headers=alice)
    assert unknown.status_code == 404 and "no-such" in unknown.json()["error"]["message"]
    short = api.client.post(
        BATCH, json={"recipe": "tiny-notes", "count": 5, "max_candidates": 3}, headers=alice
    )
    assert short.status_code == 422 and "max-candidates" in short.json()["error"]["message"]
    both = api.client.post(
        BATCH, json={"recipe": "tiny-notes", "template": "qa-pairs", "count": 2}, headers=alice
    )
    assert both.status_code == 422
