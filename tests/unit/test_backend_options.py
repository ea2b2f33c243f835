"""Catalogue ``options`` are typed per backend: a misspelt key or a wrong type stops the
catalogue with one line naming the entry and the key, instead of being ignored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from textnlp.backends.options import OPTIONS, LlamaCppOptions, SageMakerOptions
from textnlp.backends.registry import BACKENDS, ModelCatalogue, read_catalogue_file
from textnlp.errors import ConfigError


def catalogue_file(tmp_path: Path, backend: str, options: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        f"models:\n  - id: m\n    backend: {backend}\n    endpoint: e\n    options: {options}\n"
    )
    return path


def test_every_builtin_backend_has_an_options_model() -> None:
    assert set(OPTIONS) >= {"llamacpp", "transformers", "bedrock", "sagemaker", "openai"}
    assert set(OPTIONS) <= set(BACKENDS)


def test_the_builtin_catalogue_fits_its_models() -> None:
    catalogue = ModelCatalogue.load()
    assert LlamaCppOptions.of(catalogue.get("smollm2-135m")).weights == "q8_0"
    assert SageMakerOptions.of(catalogue.get("gpt-j-6b")).target_variant == "gpt-j-6b"


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        ("llamacpp", "{n_paralel: 8}", "n_paralel: unknown option (the llamacpp backend takes"),
        ("llamacpp", "{n_parallel: lots}", "n_parallel: Input should be a valid integer"),
        ("llamacpp", "{weights: q4_1}", "weights: Input should be 'q4_0', 'q8_0' or 'f16'"),
        (
            "llamacpp",
            "{shelf_streams: 1000}",
            "shelf_streams: Input should be less than or equal to 64",
        ),
        (
            "llamacpp",
            "{shelf_streams: -1}",
            "shelf_streams: Input should be greater than or equal to 0",
        ),
        ("sagemaker", "{api: grpc}", "api: Input should be 'tgi' or 'openai'"),
        ("openai", "{stream_usage: sometimes}", "stream_usage: Input should be a valid boolean"),
        ("bedrock", "{additional_fields: [1]}", "additional_fields: Input should be a valid dict"),
    ],
)
def test_bad_options_name_the_entry_and_the_key(
    tmp_path: Path, backend: str, options: str, message: str
) -> None:
    path = catalogue_file(tmp_path, backend, options)
    with pytest.raises(ConfigError) as caught:
        read_catalogue_file(path)
    assert str(caught.value).startswith(f"model catalogue {path}, entry 1: options: {message}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ("{temprature: 0.2}", "defaults: temprature: not a generation parameter"),
        ("{top_p: 5}", "defaults: top_p: Input should be less than or equal to 1"),
        ("{max_tokens: 0}", "defaults: max_tokens: Input should be greater than or equal to 1"),
        (
            "{max_tokens: 4096}",
            "defaults: max_tokens 4096 leaves no room for a prompt in context_length 2048",
        ),
    ],
)
def test_bad_defaults_name_the_entry_when_the_catalogue_is_read(
    tmp_path: Path, defaults: str, message: str
) -> None:
    # Before, the catalogue loaded, the model was listed as available, and every request
    # failed with pydantic's error (a 500 under /v1, the user's 422 in a job).
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n  - id: m\n    backend: sagemaker\n    endpoint: e\n"
        f"    context_length: 2048\n    defaults: {defaults}\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_catalogue_file(path)
    assert str(caught.value).startswith(f"model catalogue {path}, entry 1: {message}")


def test_typed_values_reach_the_backend(tmp_path: Path) -> None:
    (spec,) = read_catalogue_file(catalogue_file(tmp_path, "llamacpp", "{n_parallel: '8'}"))
    options = LlamaCppOptions.of(spec)
    assert options.n_parallel == 8 and options.top_k == 40  # coerced, and the default


def test_a_registered_backend_without_a_model_keeps_free_options(tmp_path: Path) -> None:
    (spec,) = read_catalogue_file(catalogue_file(tmp_path, "fake-anything", "{delay_s: 1}"))
    assert spec.options == {"delay_s": 1}


def test_the_catalogue_says_which_models_stream_token_by_token() -> None:
    catalogue = ModelCatalogue.load()
    assert catalogue.describe("anthropic.claude-v2").streaming is True
    # AI21 Jurassic-2 answers Converse in one piece: the stream is one delta.
    assert catalogue.describe("ai21.j2-ultra-v1").streaming is False
    assert catalogue.describe("smollm2-135m").streaming is True


def test_a_remote_model_without_its_api_key_is_unavailable_and_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed as available, it failed every call with a 500 (config_error); now ``models
    list`` tells, and a request for it is the client's 4xx (``ModelUnavailable``)."""
    from textnlp.bootstrap import Platform
    from textnlp.config import load_settings
    from textnlp.errors import ModelUnavailable

    for name in ("OPENAI_API_KEY", "TEXTNLP_SECRET_MODELS_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEXTNLP_HOME", str(tmp_path))
    platform = Platform(load_settings())
    try:
        pool = platform.pool
        info = pool.describe("gpt-4o-mini")
        assert info.available is False and "secret 'models/openai-api-key'" in str(info.reason)
        with pytest.raises(ModelUnavailable, match="is not available here: its API key"):
            asyncio.run(pool.get("gpt-4o-mini"))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        assert pool.describe("gpt-4o-mini").available is True
        assert pool.describe("smollm2-135m").available is True  # a local model needs no key
    finally:
        platform.close()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # PyYAML's ValueError ("month must be in 1..12") was a traceback.
        (
            "models:\n  - id: m\n    backend: llamacpp\n    released: 2024-13-01\n",
            "'2024-13-01' is not a valid date or time (month must be in 1..12) (line 4, column 15)",
        ),
        # The second endpoint was kept without a word.
        (
            "models:\n  - id: m\n    backend: sagemaker\n    endpoint: a\n    endpoint: b\n",
            "key 'endpoint' is given twice (line 5, column 5)",
        ),
    ],
    ids=["impossible-date", "key-twice"],
)
def test_a_catalogue_yaml_mistake_is_a_config_error(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_catalogue_file(path)
    assert str(caught.value) == f"model catalogue {path} is not valid YAML: {problem}"
