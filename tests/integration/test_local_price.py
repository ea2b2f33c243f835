"""A price set for a local model (a GPU host's cost, per token) is charged like a remote one:
the embedded llama.cpp model for real, through the composition root's pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from textnlp.adapters.db.schema import upgrade_database
from textnlp.bootstrap import Platform
from textnlp.config import load_settings
from textnlp.domain import GenerationParams, GenerationRequest, Usage
from textnlp.services.generation import DatasetJob

MODEL = "smollm2-135m"
PRICE = {"input_per_1k": 0.5, "output_per_1k": 2.0}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    home = tmp_path_factory.mktemp("home")
    settings = load_settings(
        home=home,
        generation={"response_cache": False},
        models={"prices": {MODEL: PRICE}, "user_spending_cap_usd": 1.0},
    )
    upgrade_database(settings.database_url)
    async with Platform(settings) as built:
        built.auth.create_user("local-user", "a long enough password")
        yield built


def expected(usage: Usage) -> float:
    cost = (
        usage.prompt_tokens * PRICE["input_per_1k"]
        + usage.completion_tokens * PRICE["output_per_1k"]
    )
    return round(cost / 1000, 8)


def ask(text: str) -> GenerationRequest:
    return GenerationRequest.chat(text, params=GenerationParams(max_tokens=8, seed=1))


@pytest.mark.asyncio(loop_scope="module")
async def test_completions_and_streams_carry_the_price(platform: Platform) -> None:
    completion = await platform.generation.complete(MODEL, ask("Name a colour."))
    assert completion.usage.completion_tokens > 0
    assert completion.usage.cost_usd == expected(completion.usage) > 0

    deltas = [d async for d in platform.generation.stream(MODEL, ask("Name a fruit."))]
    usage = deltas[-1].usage
    assert usage is not None and usage.cost_usd == expected(usage) > 0
    # The wrapper reports the real backend, for metrics and traces.
    assert (await platform.pool.get(MODEL)).name == "llamacpp"


@pytest.mark.asyncio(loop_scope="module")
async def test_records_and_the_owners_spend_count_it(platform: Platform) -> None:
    owner = platform.auth.user("local-user").id
    records = await platform.generation.preview(
        DatasetJob(template="product-review", count=2, output=None, model=MODEL, seed=3),
        owner=owner,
    )
    costs = [r.provenance.cost_usd for r in records]
    assert costs and all(c is not None and c > 0 for c in costs)
    spent = platform.spending.spent(owner)
    assert spent == pytest.approx(sum(c or 0.0 for c in costs))
