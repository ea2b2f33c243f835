"""The curated public API: sorted, complete, and light to import."""

from __future__ import annotations

import subprocess
import sys

import textnlp


def test_all_is_sorted_and_every_name_exists() -> None:
    assert textnlp.__all__ == sorted(textnlp.__all__)
    for name in textnlp.__all__:
        assert hasattr(textnlp, name), name


def test_import_loads_no_engine_or_heavy_library() -> None:
    code = (
        "import sys, textnlp; "
        "heavy = {'torch', 'transformers', 'llama_cpp', 'sentence_transformers', 'boto3', "
        "'fastapi', 'sqlalchemy', 'pyarrow', 'pydantic', 'jinja2'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
