"""The noise the bench scripts print (``bench.common``): a single round has none to tell."""

from __future__ import annotations

from bench.common import beyond, spread, widest


def test_a_single_round_has_no_noise_to_tell() -> None:
    assert spread([12.5]) is None
    assert spread([]) is None


def test_spread_is_the_range_over_the_median() -> None:
    assert spread([90.0, 100.0, 110.0]) == 0.2


def test_a_ratios_noise_is_unknown_when_one_side_is() -> None:
    assert widest(0.1, 0.3) == 0.3
    assert widest(0.1, None) is None
    assert beyond(1.5, 0.3) is True
    assert beyond(1.1, 0.3) is False
    assert beyond(1.5, None) is None
