"""``bench/api.py`` measures each app ``--rounds`` times, alternating which goes first, and
prints the medians with the noise (no timing here: the measurements are given)."""

from __future__ import annotations

from bench.api import rounds_of


def test_medians_order_and_noise() -> None:
    order: list[int] = []
    rates = {1: iter([100.0, 90.0, 110.0]), 2: iter([200.0, 200.0, 200.0])}

    def measure(port: int, raw: bytes, concurrency: int) -> dict[str, float]:
        order.append(port)
        rate = next(rates[port])
        return {"requests": 10, "errors": 0, "requests_per_s": rate, "p50_ms": 1.0, "p99_ms": 2.0}

    figures = rounds_of(measure, {"api": 1, "bare": 2}, b"GET", 4, rounds=3)
    assert order == [1, 2, 2, 1, 1, 2]
    assert figures["api"]["requests_per_s"] == 100.0
    assert figures["api"]["requests"] == 30
    assert figures["rps_ratio"] == 0.5
    assert figures["noise"] == 0.2  # the api's (110 - 90) / 100; the bare app's is 0
    assert figures["beyond_noise"] is True


def test_one_round_has_no_noise() -> None:
    def measure(port: int, raw: bytes, concurrency: int) -> dict[str, float]:
        return {"requests": 1, "errors": 0, "requests_per_s": 50.0, "p50_ms": 1.0, "p99_ms": 2.0}

    figures = rounds_of(measure, {"api": 1, "bare": 2}, b"GET", 4, rounds=1)
    assert figures["noise"] is None
    assert figures["beyond_noise"] is None
