"""The llama.cpp engine's batch-shaping rules, without a model: which idle sequences pad a
decode, which free slot a prompt takes, how much of a prompt a cached stream saves."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from textnlp.backends.llamacpp_engine import _GAP_FILL, _SPLIT_KV_FROM, BatchingEngine  # noqa: E402


def engine(n_parallel: int = 8, cached: dict[int, int] | None = None) -> BatchingEngine:
    """An engine's rules over fake per-slot caches (``slot: cached length``); no model."""
    rules = object.__new__(BatchingEngine)
    rules.n_parallel = n_parallel
    rules.reuse_prefix = True
    rules._cached = [[0] * (cached or {}).get(slot, 0) for slot in range(n_parallel)]
    rules._free_slots = list(range(n_parallel))
    return rules


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


def test_a_prompt_takes_the_free_slot_holding_its_longest_prefix() -> None:
    rules = engine(n_parallel=4)
    rules._cached = [[9, 9], [1, 2, 3], [1, 2, 3, 4, 5], [1, 2]]
    assert rules._pick_slot([1, 2, 3, 4, 7]) == 2
    assert rules._pick_slot([8]) == 0  # nothing shared: the lowest slot


def test_the_last_prompt_token_is_always_computed() -> None:
    rules = engine()
    assert rules._reusable([1, 2, 3], [1, 2, 3, 4]) == 2
    rules.reuse_prefix = False
    assert rules._reusable([1, 2, 3], [1, 2, 3, 4]) == 0
