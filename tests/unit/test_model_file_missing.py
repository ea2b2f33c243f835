"""A local model whose file is gone when it is loaded (removed, or being replaced, after the
pool's availability check) is unavailable, as the check says: callers read that, and the path,
the deployment's, stays in the error's own text (the CLI's, and the administrators' models
list), never in what the API answers or a job's error tells."""

from __future__ import annotations

from pathlib import Path

import pytest

from textnlp.backends.base import Backend
from textnlp.backends.llamacpp import LlamaCppBackend
from textnlp.backends.spec import ModelSpec
from textnlp.backends.transformers import TransformersBackend
from textnlp.errors import ModelUnavailable, TextNLPError, public_message, public_reason


@pytest.mark.parametrize(
    ("backend", "name"), [("llamacpp", "m.gguf"), ("transformers", "model-dir")]
)
async def test_a_missing_model_file_is_unavailable_and_its_path_stays_private(
    tmp_path: Path, backend: str, name: str
) -> None:
    path = tmp_path / "srv-models" / name
    spec = ModelSpec(id="mine", backend=backend, path=str(path), context_length=2048)
    model: Backend = LlamaCppBackend(spec) if backend == "llamacpp" else TransformersBackend(spec)
    with pytest.raises(TextNLPError) as raised:
        await model.load()
    error = raised.value
    assert isinstance(error, ModelUnavailable), error
    assert (
        public_message(error) == "model mine is not available here (an administrator can see why)"
    )
    assert str(path) not in public_reason(error)
    assert str(path) in error.message  # the person at the terminal reads it whole
