"""The ``engine`` settings (``TEXTNLP_ENGINE__LLAMA_LOGS``, ``__N_PARALLEL``, ``__N_THREADS``)
are settings like any other, and they reach the llama.cpp engine through the composition
root's pool: the embedded model loaded for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from textnlp.bootstrap import Platform
from textnlp.config import load_settings

MODEL = "smollm2-135m"


async def load_model(home: Path, environ: dict[str, str]) -> None:
    # No response cache, so no prefix store to open: the load alone.
    quick = {"TEXTNLP_HOME": str(home), "TEXTNLP_GENERATION__RESPONSE_CACHE": "false"}
    settings = load_settings(environ={**quick, **environ})
    async with Platform(settings) as platform:
        await platform.pool.get(MODEL)


@pytest.mark.asyncio
async def test_llama_logs_setting_shows_llama_cpp_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await load_model(tmp_path, {"TEXTNLP_ENGINE__LLAMA_LOGS": "true"})
    assert "llama_model_loader" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_llama_cpp_logs_are_dropped_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Shown first, so the default has to drop them again (the callback is process-wide).
    await load_model(tmp_path / "shown", {"TEXTNLP_ENGINE__LLAMA_LOGS": "true"})
    capsys.readouterr()
    await load_model(tmp_path / "default", {})
    assert "llama_model_loader" not in capsys.readouterr().err


@pytest.mark.asyncio
async def test_engine_settings_reach_the_engine_under_the_catalogues_own_options(
    tmp_path: Path,
) -> None:
    """``TEXTNLP_ENGINE__N_PARALLEL`` and ``__N_THREADS`` were in the settings table but read
    by nothing: the catalogue's options decided alone."""
    quick = {"TEXTNLP_HOME": str(tmp_path), "TEXTNLP_GENERATION__RESPONSE_CACHE": "false"}
    environ = {**quick, "TEXTNLP_ENGINE__N_PARALLEL": "3", "TEXTNLP_ENGINE__N_THREADS": "1"}
    async with Platform(load_settings(environ=environ)) as platform:
        backend: Any = await platform.pool.get(MODEL)
        engine = backend._engine
        assert (engine.n_parallel, backend._options.n_threads) == (3, 1)
    models = tmp_path / "models.yaml"  # a model's own options win over the settings
    models.write_text(
        "models:\n  - id: tuned\n    backend: llamacpp\n    path: 'embedded:smollm2'\n"
        "    context_length: 512\n    options: {n_parallel: 2}\n"
    )
    async with Platform(load_settings(environ=environ)) as platform:
        backend = await platform.pool.get("tuned")
        assert (backend._engine.n_parallel, backend._options.n_threads) == (2, 1)
