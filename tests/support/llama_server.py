"""``python -m llama_cpp.server`` with the embedded SmolLM2 on 127.0.0.1: the real
OpenAI-compatible peer of the openai backend's tests and of ``bench/backends.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port, wait_for_port


def start_llama_server(
    model: Path, threads: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """The server process and its base URL (``http://127.0.0.1:PORT/v1``), once it listens."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--chat_format", "chatml",
    ]  # fmt: skip
    if threads is not None:
        command += ["--n_threads", str(threads)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=120, proc=proc)
    except BaseException:
        proc.kill()
        raise
    return proc, f"http://127.0.0.1:{port}/v1"
