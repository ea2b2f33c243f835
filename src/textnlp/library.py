"""The Python library API: the same pipeline as ``textnlp generate``, callable from code.

import textnlp
summary = textnlp.generate_dataset("product-review", 100, "reviews.jsonl", seed=7)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textnlp.config import Settings, load_settings
from textnlp.generation.pipeline import DatasetSummary, OnRecord


async def agenerate_dataset(
    template: str,
    count: int,
    output: str | Path,
    *,
    model: str | None = None,
    variables: dict[str, Any] | None = None,
    seed: int = 0,
    concurrency: int | None = None,
    resume: bool = False,
    settings: Settings | None = None,
    on_record: OnRecord | None = None,
    max_cost_usd: float | None = None,
    **params: Any,
) -> DatasetSummary:
    """Generate ``count`` records from ``template`` into ``output`` (.jsonl, .csv, .parquet).

    ``params`` are generation parameters (``max_tokens``, ``temperature``, ``top_p``, ``stop``).
    ``max_cost_usd`` caps what the run may spend on a priced model: ``QuotaExceeded`` is raised
    before it would be passed, with the finished records written (``resume=True`` continues).
    The summary's ``cost_usd`` is the run's estimated cost (None without a price).
    """
    from textnlp.bootstrap import Platform
    from textnlp.services.generation import DatasetJob

    job = DatasetJob(
        template=template,
        count=count,
        output=Path(output),
        model=model,
        params={k: v for k, v in params.items() if v is not None},
        variables=variables,
        seed=seed,
        concurrency=concurrency,
        resume=resume,
        max_cost_usd=max_cost_usd,
    )
    async with Platform(settings or load_settings()) as platform:
        return await platform.generation.generate_dataset(job, on_record)


def generate_dataset(
    template: str, count: int, output: str | Path, **kwargs: Any
) -> DatasetSummary:
    """Blocking form of ``agenerate_dataset`` (not for use inside a running event loop)."""
    return asyncio.run(agenerate_dataset(template, count, output, **kwargs))
