"""``textnlp worker``: consume the job queues (and the batch processor's ``--once`` run).

The batch processor container (ECS, run per upload by the batch state machine) runs
``textnlp worker --queues batch --once`` with ``S3_BUCKET`` and ``S3_KEY`` (container overrides,
read as ``--s3-bucket`` and ``--s3-key``) naming a prompt file under
``prompts/user-uploads/<user>/``: the worker submits that file as a job of that user
(``JobService.submit_bucket_upload``: one job per version of the object) and then works the
queue until it is empty.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from textnlp.adapters.queue.base import QUEUE_ROLES
from textnlp.bootstrap import Platform
from textnlp.cli.common import err_console, service_settings
from textnlp.config import Settings
from textnlp.errors import InvalidInput

if TYPE_CHECKING:  # the worker's stack needs the api extra; `textnlp --help` must not
    from textnlp.worker import WorkerOptions


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    queues: str = typer.Option(
        ",".join(QUEUE_ROLES),
        "--queues",
        "-q",
        help="Comma-separated: generation, batch, validation.",
    ),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, max=64, help="Jobs at once."),
    once: bool = typer.Option(False, "--once", help="Exit when the queues are empty."),
    wait: float = typer.Option(2.0, "--wait", min=0.0, max=20.0, help="Seconds per receive."),
    s3_key: str = typer.Option(
        "",
        "--s3-key",
        envvar="S3_KEY",
        help="A prompt file under prompts/user-uploads/<user>/ to submit as that user's job "
        "first (the batch processor's).",
    ),
    s3_bucket: str = typer.Option(
        "",
        "--s3-bucket",
        envvar="S3_BUCKET",
        help="The bucket of --s3-key (with the s3 storage backend; else the configured one).",
    ),
) -> None:
    """Run queued batch jobs until stopped (SIGTERM hands running jobs back)."""
    names = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = [q for q in names if q not in QUEUE_ROLES]
    if unknown or not names:
        raise InvalidInput(
            f"--queues takes {', '.join(QUEUE_ROLES)} (comma-separated; got {queues!r})"
        )
    config = service_settings()
    if s3_bucket and config.storage.backend == "s3":
        config = config.model_copy(
            update={"storage": config.storage.model_copy(update={"bucket": s3_bucket})}
        )
    from textnlp.worker import WorkerOptions

    options = WorkerOptions(queues=names, concurrency=concurrency, once=once, wait_s=wait)
    processed = asyncio.run(_run(config, options, s3_key))
    err_console.print(f"worker stopped after {processed} message(s)")


async def _run(config: Settings, options: WorkerOptions, key: str) -> int:
    from textnlp.worker import Worker

    async with Platform(config) as platform:
        platform.tracer  # noqa: B018 - first: SQL, Redis and AWS calls are traced from the start
        worker = Worker(platform, options)
        if key:
            view = await asyncio.to_thread(platform.jobs.submit_bucket_upload, key)
            err_console.print(f"submitted job {view.id} for {key}")
        worker.install_signal_handlers()
        return await worker.run()
