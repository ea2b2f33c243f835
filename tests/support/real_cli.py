"""The installed ``textnlp`` CLI in a subprocess, as a user runs it: no test backends, the
catalogue's own models (the embedded SmolLM2 by default), or a ``models.yaml`` of real
backends given by the test (the ``openai`` backend pointed at ``tests.support.priced_server``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: ``python -m textnlp.cli.main``: what ``[project.scripts] textnlp`` runs, whatever the PATH.
TEXTNLP = (sys.executable, "-m", "textnlp.cli.main")


def cli_env(
    tmp_path: Path, env: dict[str, str] | None = None, models: str | None = None
) -> dict[str, str]:
    """This process's environment (its ``TEXTNLP_HOME``), the response cache off (each record
    generated), and ``models`` written to ``tmp_path/models.yaml`` when given."""
    extra = {"TEXTNLP_GENERATION__RESPONSE_CACHE": "false", **(env or {})}
    if models is not None:
        (tmp_path / "models.yaml").write_text(models)
        extra["TEXTNLP_MODELS_FILE"] = str(tmp_path / "models.yaml")
    return {**os.environ, **extra}


def run_cli(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 300,
    models: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``textnlp *args`` run from ``tmp_path``."""
    return subprocess.run(
        [*TEXTNLP, *args],
        cwd=tmp_path,
        env=cli_env(tmp_path, env, models),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
