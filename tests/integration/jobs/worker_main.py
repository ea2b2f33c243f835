"""``python -m tests.integration.jobs.worker_main worker ...``: the CLI with test backends."""

from tests.integration.jobs.backends import register

register()

from textnlp.cli.main import run  # noqa: E402

run()
