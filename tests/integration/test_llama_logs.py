"""``TEXTNLP_ENGINE__LLAMA_LOGS`` is a setting like any other, and it reaches the llama.cpp
engine through the composition root's pool: the embedded model loaded for real."""

from __future__ import annotations

from pathlib import Path

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
