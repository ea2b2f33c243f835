"""Cost in the dataset pipeline: per-record provenance, the summary's sum, the cache, and a
spending cap that stops a run with its records kept (a priced OpenAI-compatible fake)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from tests.support.fake_backend import FakeBackend
from tests.support.priced_backend import COMPLETION_TOKENS, PRICE, PricedOpenAIFake
from textnlp.adapters.db.spending import SpendingStore
from textnlp.adapters.secrets import EnvSecrets
from textnlp.backends.base import PerRequestBackend
from textnlp.backends.cloud import CloudContext
from textnlp.backends.pricing import CappedBackend, Price, PriceTable, SpendingCap
from textnlp.backends.resilience import RetryPolicy
from textnlp.backends.spec import ModelSpec
from textnlp.config import load_settings
from textnlp.domain import Completion, GenerationParams, GenerationRequest, TokenDelta, Usage
from textnlp.errors import QuotaExceeded
from textnlp.generation.cache import SqliteResponseCache
from textnlp.generation.journal import journal_path
from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest
from textnlp.generation.templates import TemplateLibrary
from textnlp.generation.writers import read_dataset
from textnlp.services.spending import SpendingService

LIBRARY = TemplateLibrary.load()
SPEC = ModelSpec(
    id="fake-priced", backend="openai-fake", endpoint="http://priced.test/v1", context_length=4096
)
PRICES = PriceTable({"fake-priced": Price(PRICE["input_per_1k"], PRICE["output_per_1k"])})


def request(out: Path, count: int, **kw: object) -> DatasetRequest:
    return DatasetRequest(template=LIBRARY.get("product-review"), count=count, output=out, **kw)  # type: ignore[arg-type]


def priced(prices: PriceTable = PRICES) -> PricedOpenAIFake:
    context = CloudContext(
        secrets=EnvSecrets({}),
        prices=prices,
        retry=RetryPolicy(max_attempts=1, base_delay_s=0.0, max_delay_s=0.0),
    )
    return PricedOpenAIFake(SPEC, context=context)


def record_cost(prompt_tokens: int, completion_tokens: int) -> float:
    return (
        prompt_tokens * PRICE["input_per_1k"] + completion_tokens * PRICE["output_per_1k"]
    ) / 1000


async def test_records_carry_their_cost_and_the_summary_sums_it(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    async with priced() as backend:
        summary = await DatasetPipeline(backend).run(request(out, 6, concurrency=3))
    records = read_dataset(out)
    assert [r.index for r in records] == list(range(6))
    for record in records:
        p = record.provenance
        assert p.completion_tokens == COMPLETION_TOKENS and p.prompt_tokens > 0
        assert p.cost_usd == pytest.approx(record_cost(p.prompt_tokens, p.completion_tokens))
    assert summary.cost_usd == pytest.approx(sum(r.provenance.cost_usd or 0 for r in records))
    assert summary.cost_usd is not None and summary.cost_usd > 0


async def test_unpriced_models_have_no_cost(tmp_path: Path) -> None:
    out = tmp_path / "d.csv"  # CSV writes the missing cost as an empty cell
    summary = await DatasetPipeline(FakeBackend()).run(request(out, 3))
    assert summary.cost_usd is None
    assert [r.provenance.cost_usd for r in read_dataset(out)] == [None, None, None]
    async with priced(PriceTable()) as backend:  # a remote model without a price
        again = await DatasetPipeline(backend).run(request(tmp_path / "e.jsonl", 2))
    assert again.cost_usd is None


async def test_answers_from_the_cache_cost_nothing(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "cache.sqlite")
    fixed = {"temperature": 0.0}
    try:
        async with priced() as backend:
            first = await DatasetPipeline(backend, cache).run(
                request(tmp_path / "a.jsonl", 4, params=fixed)
            )
            second = await DatasetPipeline(backend, cache).run(
                request(tmp_path / "b.jsonl", 4, params=fixed)
            )
    finally:
        cache.close()
    assert first.cost_usd is not None and first.cost_usd > 0
    assert second.cached == 4 and second.cost_usd == 0.0
    assert {r.provenance.cost_usd for r in read_dataset(tmp_path / "b.jsonl")} == {0.0}


def test_a_runs_cap_is_named_for_every_surface_and_shown_to_the_hundredth_of_a_cent() -> None:
    """It said "would exceed $0.00" of a $0.0001 cap, and named the CLI's --max-cost to a
    library caller."""

    def no_store() -> SpendingStore:
        raise AssertionError("a run's own cap needs no database")

    service = SpendingService(load_settings(environ={}), PRICES, no_store)
    (cap,) = service.run_budget(0.0001).caps
    with pytest.raises(QuotaExceeded) as caught:
        cap.check(0.0003)
    assert caught.value.message == (
        "spending cap of this run (max_cost_usd / --max-cost) reached: $0.0000 spent, "
        "$0.0000 in flight, $0.0003 more would exceed $0.0001"
    )


async def test_a_spending_cap_stops_the_run_keeping_valid_records(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    cap = SpendingCap(0.6, name="--max-cost")
    async with priced() as backend:
        pipeline = DatasetPipeline(CappedBackend(backend, cap, PRICES))
        with pytest.raises(QuotaExceeded, match="spending cap of --max-cost reached") as caught:
            await pipeline.run(request(out, 40, concurrency=4))
        records = read_dataset(out)
        written = caught.value.details["written"]
        assert caught.value.details["requested"] == 40 and written == len(records)
        indices = [r.index for r in records]
        assert 0 < len(indices) < 40 and indices == sorted(set(indices))
        spent = sum(r.provenance.cost_usd or 0.0 for r in records)
        assert spent <= 0.6 and cap.spent_usd == pytest.approx(spent)
        assert journal_path(out).exists()  # kept for --resume

        # A run with room left continues where the cap stopped it, every index once.
        summary = await DatasetPipeline(backend).run(request(out, 40, concurrency=4, resume=True))
    assert [r.index for r in read_dataset(out)] == list(range(40))
    assert summary.resumed == written and not journal_path(out).exists()


class Fixed(PerRequestBackend):
    """Costs 0.01 per request, with a worst case (10 + 20 tokens at 0.01) of 0.3."""

    name = "fixed"

    def __init__(self) -> None:
        super().__init__(ModelSpec(id="m", backend="fixed"))
        self.calls = 0

    async def complete(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        await asyncio.sleep(0.001)
        usage = Usage(prompt_tokens=10, completion_tokens=1, cost_usd=0.01)
        return Completion(text="x", finish_reason="stop", model="m", usage=usage)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return [await self.complete(r) for r in requests]

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return 10


async def test_requests_wait_for_room_instead_of_failing_early() -> None:
    inner = Fixed()
    cap = SpendingCap(1.0)
    capped = CappedBackend(inner, cap, PriceTable({"m": Price(10.0, 10.0)}))
    one = GenerationRequest(prompt="x", params=GenerationParams(max_tokens=20))

    async def worker() -> int:
        done = 0
        while True:
            try:
                await capped.generate_one(one)
            except QuotaExceeded:
                return done
            done += 1

    done = sum(await asyncio.gather(*(worker() for _ in range(8))))
    # Only 3 worst cases fit at once; waiting for settlements lets 70 real requests through.
    assert done == inner.calls and done >= 70
    assert cap.spent_usd <= 1.0 and cap.reserved_usd == 0.0


async def test_unpriced_requests_pass_a_spent_cap() -> None:
    cap = SpendingCap(1.0, spent_usd=2.0)  # already past it
    capped = CappedBackend(FakeBackend(), cap, PRICES)  # fake-model has no price
    completion = await capped.generate_one(GenerationRequest(prompt="hello"))
    assert completion.text.startswith("text ") and cap.spent_usd == 2.0


class Templated(Fixed):
    """A chat model whose template adds 30 tokens to every prompt (SmolLM2's adds its default
    system prompt and the role markers), and that says so."""

    async def complete(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        prompt = self.prompt_token_count(request)
        usage = Usage(prompt_tokens=prompt, completion_tokens=8, cost_usd=(prompt + 8) / 1000)
        return Completion(text="x", finish_reason="stop", model="m", usage=usage)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prompt_token_count(self, request: GenerationRequest) -> int:
        return self.count_tokens(request.as_text()) + 30


async def test_a_cap_counts_the_prompt_as_the_model_reads_it() -> None:
    """ "Hi" is 1 token of text but 31 as the model reads it: with 8 more its worst case is
    $0.039, past a $0.02 cap, so it does not run (counting the text alone, $0.009, it ran)."""
    inner = Templated()
    cap = SpendingCap(0.02)
    capped = CappedBackend(inner, cap, PriceTable({"m": Price(1.0, 1.0)}))
    hi = GenerationRequest.chat("Hi", params=GenerationParams(max_tokens=8))
    with pytest.raises(QuotaExceeded):
        await capped.generate_one(hi)
    assert inner.calls == 0 and cap.spent_usd == 0.0
    roomy = SpendingCap(0.039)
    completion = await CappedBackend(inner, roomy, PriceTable({"m": Price(1.0, 1.0)})).generate_one(
        hi
    )
    assert completion.usage.prompt_tokens == 31 and roomy.spent_usd <= roomy.limit_usd


def test_a_backend_without_its_template_counts_the_chat_markers() -> None:
    """By default a chat request's prompt is its text and 5 tokens for each message and for
    the reply's header; a raw prompt is its text."""
    chat = GenerationRequest.chat("Hi there", system="Be brief")
    assert FakeBackend().prompt_token_count(chat) == 4 + 5 * 3
    assert FakeBackend().prompt_token_count(GenerationRequest(prompt="Hi there")) == 2
