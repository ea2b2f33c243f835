"""The llama.cpp engine's batch-shaping rules, without a model: which idle sequences pad a
decode, which free slot a prompt takes, how much of a prompt a cached stream saves."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from textnlp.backends.llamacpp_engine import (  # noqa: E402
    _GAP_FILL,
    _SPLIT_KV_FROM,
    MERGE_MIN_CHUNK,
    SHELF_MIN_TOKENS,
    BatchingEngine,
    SequenceJob,
)


def engine(
    n_parallel: int = 8, cached: dict[int, int] | None = None, shelf: int = 0
) -> BatchingEngine:
    """An engine's rules over fake per-stream caches (``stream: cached length``); no model."""
    rules = object.__new__(BatchingEngine)
    rules.n_parallel = n_parallel
    rules.reuse_prefix = True
    rules.copy_min_tokens = 4
    streams = n_parallel + 1 + shelf
    rules._cached = [[0] * (cached or {}).get(stream, 0) for stream in range(streams)]
    rules._scopes = [None] * streams
    rules._free_slots = list(range(n_parallel))
    rules._shelf = list(range(n_parallel + 1, streams))
    rules._copy_sources = set()
    rules._memory = None
    rules._prompt_lengths = [len(tokens) for tokens in rules._cached[:n_parallel]]
    rules.counters = {"prompts_shelved": 0}
    return rules


def holding(rules: BatchingEngine, slot: int, prompt: list[int], generated: int = 0) -> None:
    """``slot`` holds ``prompt`` and ``generated`` tokens after it."""
    rules._cached[slot] = [*prompt, *[0] * generated]
    rules._prompt_lengths[slot] = len(prompt)


def job(prompt: list[int], scope: str | None = None) -> SequenceJob:
    return SequenceJob(prompt, 8, 0.0, 1.0, None, (), False, lambda *_: None, scope=scope)


def one_token(*slots: int) -> dict[int, list[int]]:
    return {slot: [1] for slot in slots}


def test_short_gaps_between_busy_slots_are_padded_long_ones_are_not() -> None:
    rules = engine(n_parallel=16)
    assert rules._pads(one_token(0, 1, 3, 4)) == [2]
    far = 4 + _GAP_FILL + 1
    assert rules._pads(one_token(0, 1, far)) == []


def test_a_long_sequence_alone_gets_a_neighbour_a_short_one_does_not() -> None:
    rules = engine(cached={3: _SPLIT_KV_FROM, 7: _SPLIT_KV_FROM})
    assert rules._pads(one_token(3)) == [4]
    assert rules._pads(one_token(7)) == [8]  # the spare sequence after the last slot
    assert engine(cached={3: _SPLIT_KV_FROM - 1})._pads(one_token(3)) == []


def test_prompt_chunks_are_never_padded() -> None:
    rules = engine(cached={3: _SPLIT_KV_FROM})
    assert rules._pads({0: [1, 2], 3: [1, 2]}) == []


def test_beside_prompt_chunks_only_gaps_next_to_a_decoding_sequence_are_padded() -> None:
    rules = engine(n_parallel=16, cached={13: _SPLIT_KV_FROM})
    rows = {0: [1], 2: [1, 2, 3], 5: [1, 2, 3], 7: [1], 13: [1]}
    # 1 joins the decoding 0 to the chunk at 2, 6 the chunk at 5 to the decoding 7; 3-4
    # would cut the chunks at 2 and 5 apart; 13, too far to join, decodes alone past the
    # split-KV size, so it gets a neighbour.
    assert rules._pads(rows) == [1, 6, 14]


def test_prompt_chunks_share_the_decodes_call_when_long_enough_and_the_batch_holds_them() -> None:
    rules = engine(n_parallel=8)
    rules.n_batch = 64  # 9 rows for the slots and the spare, 55 for prompt chunks
    assert rules._merges(n_prefilling=2, chunk=MERGE_MIN_CHUNK)
    assert not rules._merges(n_prefilling=2, chunk=MERGE_MIN_CHUNK - 1)  # a lone row would be left
    assert rules._merges(n_prefilling=5, chunk=11)
    assert not rules._merges(n_prefilling=5, chunk=12)


def test_a_prompt_takes_the_free_slot_holding_its_longest_prefix() -> None:
    rules = engine(n_parallel=4)
    rules._cached = [[9, 9], [1, 2, 3], [1, 2, 3, 4, 5], [1, 2]]
    assert rules._pick_slot(job([1, 2, 3, 4, 7])) == 2
    assert rules._pick_slot(job([8])) == 0  # nothing shared: the lowest slot


def test_a_prompt_reuses_only_its_own_scopes_streams() -> None:
    """One user's prompt never starts faster for what another user's left behind (a timing
    oracle of their prompts); the unscoped work (a dataset run) shares among itself."""
    rules = engine(n_parallel=3)
    rules._cached = [[9], [1, 2, 3, 4, 5], [1, 2, 3], [], []]
    rules._scopes = [None, "alice", "bob", None, None]
    assert rules._pick_slot(job([1, 2, 3, 4, 7], scope="bob")) == 2
    assert rules._shareable(job([1, 2, 3, 4, 7], scope="bob"), 1) == 0
    assert rules._shareable(job([1, 2, 3, 4, 7], scope="alice"), 1) == 4
    assert rules._shareable(job([1, 2, 3, 4, 7]), 1) == 0  # unscoped work: not alice's either
    assert rules._pick_slot(job([1, 2, 3, 4, 7], scope="carol")) == 0


def test_the_last_prompt_token_is_always_computed() -> None:
    rules = engine()
    assert rules._reusable([1, 2, 3], [1, 2, 3, 4]) == 2
    rules.reuse_prefix = False
    assert rules._reusable([1, 2, 3], [1, 2, 3, 4]) == 0


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The stream copies the rules ask llama.cpp for, as (source, destination)."""
    made: list[tuple[int, int]] = []
    monkeypatch.setattr(
        "llama_cpp.llama_memory_seq_cp", lambda _m, src, dst, _p0, _p1: made.append((src, dst))
    )
    return made


def test_a_slot_given_away_shelves_its_prompt_in_the_least_recently_used_stream(
    copies: list[tuple[int, int]],
) -> None:
    rules = engine(n_parallel=2, shelf=2)  # streams: slots 0-1, spare 2, shelf 3-4
    first, second = list(range(SHELF_MIN_TOKENS)), list(range(100, 100 + SHELF_MIN_TOKENS))
    holding(rules, 0, first, generated=5)
    holding(rules, 1, second)
    rules._shelve(0, kept=0)
    rules._shelve(1, kept=0)
    assert copies == [(0, 3), (1, 4)]
    assert rules._cached[3] == rules._cached[0] and rules._shelf == [3, 4]
    holding(rules, 0, list(range(200, 200 + SHELF_MIN_TOKENS)))
    rules._shelve(0, kept=0)  # the oldest shelf stream (3) makes room
    assert copies[-1] == (0, 3) and rules._shelf == [4, 3]
    assert rules.counters["prompts_shelved"] == 3


def test_nothing_is_shelved_that_is_kept_short_or_on_the_shelf_already(
    copies: list[tuple[int, int]],
) -> None:
    rules = engine(n_parallel=2, shelf=2)
    prompt = list(range(SHELF_MIN_TOKENS + 3))
    holding(rules, 0, prompt, generated=50)
    rules._shelve(0, kept=4)  # the prompt's tail past what the new request keeps: too short
    assert copies == []
    rules._cached[4] = [*prompt, 7, 7]  # the shelf holds it, and more
    holding(rules, 0, prompt)
    rules._shelve(0, kept=0)
    assert copies == []
    engine(n_parallel=2, cached={0: 99})._shelve(0, kept=0)  # no shelf at all
    assert copies == []
