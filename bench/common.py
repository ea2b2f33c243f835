"""What the benchmarks share: the engine sweeps' prompts, the noise of a figure, the machine."""

from __future__ import annotations

import os
import platform
import statistics
from typing import Any

# Raw prompts, one per request in turn: 32 requests read each of them four times.
PROMPTS = [
    "Write a short review of a pair of wireless earbuds.",
    "Describe a rainy afternoon in a small coastal town.",
    "Explain how a bicycle gear system works.",
    "Tell a short story about a lost cat that finds its way home.",
    "List some tips for staying focused while studying.",
    "Write a product description for a ceramic coffee mug.",
    "Summarise the plot of a detective novel you invent.",
    "Give advice to someone starting to learn the guitar.",
]


def prompts(n: int) -> list[str]:
    return [PROMPTS[i % len(PROMPTS)] for i in range(n)]


def spread(rates: list[float]) -> float | None:
    """The rounds' noise: their range relative to their median. None (JSON null) for a single
    round: one measurement says nothing of the noise, and 0.0 would claim there is none."""
    if len(rates) < 2:
        return None
    return round((max(rates) - min(rates)) / max(statistics.median(rates), 1e-9), 3)


def widest(*spreads: float | None) -> float | None:
    """The noise of a ratio: the larger of its sides' spreads; None when a side's is unknown."""
    known = [s for s in spreads if s is not None]
    return max(known) if known and len(known) == len(spreads) else None


def beyond(ratio: float, noise: float | None) -> bool | None:
    """Whether ``ratio`` differs from 1 by more than ``noise``; None when the noise is unknown."""
    return None if noise is None else abs(ratio - 1) > noise


def machine() -> dict[str, Any]:
    """The machine a figure was measured on, and how busy it was as the run ended."""
    return {
        "cpus": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
