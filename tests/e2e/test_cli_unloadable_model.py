"""``generate`` with a catalogue model whose GGUF llama.cpp cannot load (garbage bytes, as a
download cut short or a file of another format leaves): it was llama-cpp-python's traceback.
It is one line that names the model (not the file: the catalogue does), and exit 1, as any
run that makes no record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def test_a_model_file_llamacpp_cannot_load_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    weights = tmp_path / "acme-private.gguf"
    weights.write_bytes(b"GGUF" + bytes(range(256)) * 32)  # the magic, then nonsense
    (home / "models.yaml").write_text(yaml.safe_dump({"models": [
        {"id": "broken-gguf", "backend": "llamacpp", "path": str(weights),
         "context_length": 512}]}))  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "textnlp.cli.main", "generate", "-m", "broken-gguf",
         "-t", "product-review", "-n", "1", "-o", "o.jsonl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "TEXTNLP_HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "error: model broken-gguf could not be loaded: its GGUF file is corrupt, truncated or "
        "not one llama.cpp can read\n"
    )
    assert list(tmp_path.glob("o.jsonl*")) == []
