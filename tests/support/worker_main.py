"""``python -m tests.support.worker_main worker ...``: the CLI with test backends."""

from tests.support.job_backends import register

register()

from textnlp.cli.main import run  # noqa: E402

run()
