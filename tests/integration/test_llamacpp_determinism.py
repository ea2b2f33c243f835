"""The engine's tokens depend on the request only: not on its neighbours in a batch, not on
when it arrives, not on whether its prompt prefix was computed or copied (issue 18)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from textnlp.backends.kv_store import PrefixStoreConfig
from textnlp.backends.llamacpp import LlamaCppBackend
from textnlp.backends.registry import ModelCatalogue
from textnlp.domain import GenerationParams, GenerationRequest

pytestmark = pytest.mark.asyncio(loop_scope="module")

SYSTEM = (
    "You are a careful assistant that writes short, concrete product reviews for an online "
    "shop. Each review names the product, one thing the reviewer liked and one thing they did "
    "not, in plain English, without lists or headings."
)
PRODUCTS = ["a kettle", "a desk lamp", "running shoes", "a backpack", "a blender", "headphones"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend() -> AsyncIterator[LlamaCppBackend]:
    spec = ModelCatalogue.load().get("smollm2-135m")
    async with LlamaCppBackend(spec, n_parallel=6) as engine:
        yield engine


def review(
    product: str, *, seed: int | None, temperature: float, max_tokens: int = 40
) -> GenerationRequest:
    params = GenerationParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    request = GenerationRequest.chat(f"Review {product}.", system=SYSTEM, params=params)
    return request.model_copy(update={"ignore_eos": True})


def requests(temperature: float) -> list[GenerationRequest]:
    return [review(p, seed=100 + i, temperature=temperature) for i, p in enumerate(PRODUCTS)]


async def texts(backend: LlamaCppBackend, batch: list[GenerationRequest]) -> list[str]:
    return [completion.text for completion in await backend.generate(batch)]


async def one_by_one(backend: LlamaCppBackend, batch: list[GenerationRequest]) -> list[str]:
    return [(await backend.generate_one(request)).text for request in batch]


def clear_slots(backend: LlamaCppBackend) -> None:
    """Forget every cached prompt, in the slots and on the shelf (the engine is idle between
    tests)."""
    engine = backend.engine
    for stream in range(len(engine._cached)):
        engine._truncate(stream, 0)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
async def test_a_shared_prefix_computed_once_gives_the_tokens_of_full_prefills(
    backend: LlamaCppBackend, temperature: float
) -> None:
    engine = backend.engine
    batch = requests(temperature)
    engine.reuse_prefix = False
    try:
        full = await one_by_one(backend, batch)
    finally:
        engine.reuse_prefix = True
    clear_slots(backend)
    before = engine.counters.copy()
    together = await texts(backend, batch)  # cold: one prefills, the others copy its KV
    copied = engine.counters["prompt_tokens_copied"] - before["prompt_tokens_copied"]
    again = await texts(backend, batch)  # warm: every slot still holds the prefix
    kept = engine.counters["prompt_tokens_kept"] - before["prompt_tokens_kept"]
    assert together == full
    assert again == full
    assert copied > 0 and kept > 0  # the prefix really was reused, both ways


async def test_a_prompt_evicted_from_its_slot_comes_back_from_the_shelf(
    backend: LlamaCppBackend,
) -> None:
    # A prompt whose own tail is long enough to shelve (SHELF_MIN_TOKENS past the shared part).
    teapot = "a teapot: " + ", ".join(f"glazed in colour number {i}" for i in range(12))
    request = review(teapot, seed=11, temperature=0.8)
    clear_slots(backend)
    engine = backend.engine
    first = (await backend.generate_one(request)).text
    before = engine.counters.copy()
    # Every slot is taken by another product: the teapot's slot goes to one of them.
    others = [review(p + " for two", seed=i, temperature=0.8) for i, p in enumerate(PRODUCTS)]
    await texts(backend, others)
    shelved = engine.counters["prompts_shelved"] - before["prompts_shelved"]
    copied = engine.counters["prompt_tokens_copied"]
    again = (await backend.generate_one(request)).text
    assert shelved >= 1
    assert engine.counters["prompt_tokens_copied"] - copied >= backend.count_tokens(teapot)
    assert again == first


async def test_a_request_reads_the_same_alone_among_neighbours_and_late(
    backend: LlamaCppBackend,
) -> None:
    request = review("a teapot", seed=7, temperature=0.8, max_tokens=48)
    clear_slots(backend)
    alone = (await backend.generate_one(request)).text
    neighbours = [
        review(p * (i + 1), seed=i, temperature=0.8, max_tokens=20 + 9 * i)
        for i, p in enumerate(PRODUCTS[:5])
    ]
    crowded = await texts(backend, [*neighbours, request])

    async def late() -> str:
        await asyncio.sleep(0.3)  # arrives while the others decode
        return (await backend.generate_one(request)).text

    *_, staggered = await asyncio.gather(*(backend.generate_one(n) for n in neighbours), late())
    assert crowded[-1] == alone
    assert staggered == alone


async def test_prompts_prefilled_in_the_decodes_call_read_as_prefilled_apart(
    backend: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = backend.engine
    mixed: list[int] = []
    original = engine._decode

    def watching(rows: dict[int, list[int]], logits: set[int]) -> dict[int, int]:
        if len({len(tokens) == 1 for tokens in rows.values()}) == 2:
            mixed.append(len(rows))
        return original(rows, logits)

    late_ones = [review(p, seed=30 + i, temperature=0.8) for i, p in enumerate(PRODUCTS[:3])]
    clear_slots(backend)
    alone = await one_by_one(backend, late_ones)
    clear_slots(backend)
    monkeypatch.setattr(engine, "_decode", watching)
    early = [review(p, seed=i, temperature=0.8, max_tokens=60) for i, p in enumerate(PRODUCTS[3:])]

    async def late(request: GenerationRequest, delay: float) -> str:
        await asyncio.sleep(delay)  # arrives while the early ones decode
        return (await backend.generate_one(request)).text

    results = await asyncio.gather(
        *(backend.generate_one(request) for request in early),
        *(late(request, 0.2 + 0.15 * i) for i, request in enumerate(late_ones)),
    )
    assert mixed, "no prompt chunk shared a llama_decode with decoding sequences"
    assert list(results[len(early) :]) == alone


async def test_a_long_sequence_decoding_alone_keeps_its_tokens(backend: LlamaCppBackend) -> None:
    # Past 256 cached cells, llama.cpp decodes a lone sequence with another attention kernel:
    # the engine pads it so that it reads as it does among neighbours.
    long_prompt = "Summarise this text: " + " ".join(f"item {i} is fine;" for i in range(70))
    request = review(long_prompt, seed=3, temperature=0.8, max_tokens=64)
    short = review("a pen", seed=4, temperature=0.8, max_tokens=2)
    clear_slots(backend)
    alone = (await backend.generate_one(request)).text
    long_neighbour = review(long_prompt, seed=5, temperature=0.8, max_tokens=64)
    beside = await texts(backend, [short, long_neighbour, request])
    assert backend.count_tokens(long_prompt) > 256
    assert beside[-1] == alone


@pytest.mark.parametrize("temperature", [0.0, 0.8])
async def test_a_prompt_started_from_an_earlier_process_state_gives_the_same_tokens(
    backend: LlamaCppBackend, tmp_path: Path, temperature: float
) -> None:
    """A judge edited between two runs: the first run's engine saves the review's prompt state,
    a new engine on the same store loads it for the edited prompt, and its tokens are those of
    a full prefill (the module's engine, which has no store). A request not marked
    ``keep_prompt`` (a user's) is never saved."""
    text = " ".join(f"The {p} works well, though it could be cheaper." for p in PRODUCTS)
    params = GenerationParams(max_tokens=24, temperature=temperature, seed=7)

    def judge(rubric: str) -> GenerationRequest:
        request = GenerationRequest.chat(
            f"Review: {text}\n\n{rubric}", system=SYSTEM, params=params
        )
        return request.model_copy(update={"keep_prompt": True})

    before, edited = judge("Score it on fluency."), judge("Does the review read well? Score it.")
    spec = ModelCatalogue.load().get("smollm2-135m")
    config = PrefixStoreConfig(tmp_path, 1 << 30)
    async with LlamaCppBackend(spec, n_parallel=2, prefix_store=config) as first:
        await first.generate_one(before.model_copy(update={"keep_prompt": False}))
        assert first.engine.counters["prompts_saved"] == 0
        await first.generate_one(before)
        assert first.engine.counters["prompts_saved"] == 1
    async with LlamaCppBackend(spec, n_parallel=2, prefix_store=config) as second:
        loaded = await second.generate_one(edited)
        counters = second.engine.counters
    clear_slots(backend)
    full = await backend.generate_one(edited)
    assert counters["prompt_tokens_loaded"] > 100  # the system prompt and the review
    assert counters["prompt_tokens_computed"] < 30  # the edited rubric only
    assert loaded.text == full.text


async def test_a_state_loaded_into_a_slot_being_shelved_leaves_the_shelf_intact(
    backend: LlamaCppBackend, tmp_path: Path
) -> None:
    """One slot: a new prompt takes it from a long one, which goes to the shelf (a copy
    llama.cpp makes at the next decode), and the new prompt's start is in the store. Loading
    it into the slot before that copy is made would shelve the loaded state under the old
    prompt's tokens: the old prompt, asked again, must read as it did."""
    params = GenerationParams(max_tokens=16, temperature=0.8, seed=11)
    long_text = " ".join(f"The {p} arrived on time and works as described." for p in PRODUCTS)
    stored_text = " ".join(f"My {p} broke after a week; support never answered." for p in PRODUCTS)
    old = GenerationRequest.chat(f"Summarise: {long_text}", params=params)
    new = GenerationRequest.chat(f"Rate: {stored_text} Score it.", params=params)
    new = new.model_copy(update={"keep_prompt": True})
    spec = ModelCatalogue.load().get("smollm2-135m")
    config = PrefixStoreConfig(tmp_path, 1 << 30)
    options: dict[str, Any] = {"n_parallel": 1, "shelf_streams": 2, "prefix_store": config}
    async with LlamaCppBackend(spec, **options) as first:  # the store's state of ``new``
        await first.generate_one(new)
    async with LlamaCppBackend(spec, **options) as one:
        before = (await one.generate_one(old)).text
        rated = (await one.generate_one(new)).text
        shelved = one.engine.counters["prompts_shelved"]
        after = (await one.generate_one(old)).text
        counters = one.engine.counters
    clear_slots(backend)
    assert shelved >= 1 and counters["prompt_tokens_loaded"] > 0
    assert after == before
    assert rated == (await backend.generate_one(new)).text


async def test_a_users_prompt_reuses_nothing_another_user_left(backend: LlamaCppBackend) -> None:
    """What one user's prompts left in the engine never makes another's start faster (it would
    tell them, by timing, what the first one's prompt began with); the same user's do."""
    engine = backend.engine
    clear_slots(backend)
    alice = [r.model_copy(update={"cache_scope": "alice"}) for r in requests(0.0)]
    bob = [r.model_copy(update={"cache_scope": "bob"}) for r in requests(0.0)]
    await texts(backend, alice[:1])

    def reused() -> int:
        counters = engine.counters
        return sum(counters[k] for k in ("prompt_tokens_kept", "prompt_tokens_copied"))

    before = reused()
    bobs = await texts(backend, bob[1:2])  # shares the system prompt with alice's
    assert reused() == before
    alices = await texts(backend, alice[1:2])
    assert reused() > before  # her own prompt's prefix
    assert bobs == alices  # scopes change what is reused, never the tokens
