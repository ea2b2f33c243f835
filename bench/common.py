"""What the engine sweeps share: their prompts and the noise of a figure."""

from __future__ import annotations

import statistics

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


def spread(rates: list[float]) -> float:
    """The rounds' noise: their range relative to their median (0 for a single round)."""
    if len(rates) < 2:
        return 0.0
    return round((max(rates) - min(rates)) / max(statistics.median(rates), 1e-9), 3)
