"""The composition root for tests: a job service and a worker run over real adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from textnlp.adapters.db.schema import upgrade_database
from textnlp.bootstrap import Platform
from textnlp.config import Settings, load_settings
from textnlp.services.jobs import JobService
from textnlp.worker import Worker, WorkerOptions


@contextmanager
def job_service(settings: Settings) -> Iterator[JobService]:
    """The job service of a platform built from ``settings``, closed on exit."""
    platform = Platform(settings)
    try:
        yield platform.jobs
    finally:
        platform.close()


@contextmanager
def local_platform(home: Path) -> Iterator[Platform]:
    """The local profile's platform in ``home`` (SQLite, local storage), migrated."""
    settings = load_settings(home=home)
    upgrade_database(settings.database_url)
    with Platform(settings) as built:
        yield built


def run_worker(settings: Settings, concurrency: int = 1) -> int:
    """A worker of its own platform that works the queues until they are empty."""

    async def go() -> int:
        async with Platform(settings) as platform:
            options = WorkerOptions(once=True, wait_s=0.2, concurrency=concurrency)
            return await Worker(platform, options).run()

    return asyncio.run(go())
