"""The transformers engine on a real (tiny, random-weight) Llama made offline in the test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import require
from textnlp.backends.spec import ModelSpec
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.errors import ContextWindowExceeded


@pytest.fixture(scope="module", autouse=True)
def _hf_extra() -> None:
    """The ``hf`` extra is part of the dev install: missing, it skips locally and fails in CI."""
    import importlib.util

    missing = [m for m in ("transformers", "torch") if importlib.util.find_spec(m) is None]
    require(not missing, f"the hf extra is not installed ({', '.join(missing)})")


CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "synthetic data helps train small language models",
    "a review of wireless earbuds with great sound",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama and a word-level tokenizer, saved with ``save_pretrained``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|system|>", "<|assistant|>"]
    tokenizer.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=special))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    import torch

    # Fixed weights: a model drawn anew each run sometimes has near-tied greedy choices that
    # two kernels (a streamer's and a batch's) break differently.
    torch.manual_seed(1234)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def spec(path: Path, **options: object) -> ModelSpec:
    return ModelSpec(
        id="tiny-llama",
        backend="transformers",
        path=str(path),
        context_length=128,
        options=dict(options),
    )


async def test_concurrent_requests_are_decoded_in_one_batch(tiny_llama: Path) -> None:
    from textnlp.backends.transformers import TransformersBackend

    backend = TransformersBackend(spec(tiny_llama, batching="static", batch_window_ms=50))
    calls: list[int] = []
    async with backend:
        original = backend._generate_sync

        def counting(group: list[object]) -> object:
            calls.append(len(group))
            return original(group)  # type: ignore[arg-type]

        backend._generate_sync = counting  # type: ignore[method-assign,assignment]
        params = GenerationParams(max_tokens=6, temperature=0.8, seed=1)
        requests = [
            GenerationRequest.chat(text, params=params).model_copy(update={"ignore_eos": True})
            for text in CORPUS
        ]
        completions = await backend.generate(requests)
    assert calls == [3]  # one generate() call for the three requests
    assert [c.usage.completion_tokens for c in completions] == [6, 6, 6]
    assert all(c.finish_reason == "length" and c.model == "tiny-llama" for c in completions)
    assert all(c.usage.prompt_tokens > 0 for c in completions)


@pytest.mark.parametrize("batching", ["static", "continuous"])
async def test_greedy_is_deterministic_and_streaming_matches(
    tiny_llama: Path, batching: str
) -> None:
    from textnlp.backends.transformers import TransformersBackend

    request = GenerationRequest(
        prompt="the quick brown fox", params=GenerationParams(max_tokens=5, temperature=0)
    )
    async with TransformersBackend(spec(tiny_llama, batching=batching)) as backend:
        first, second = await asyncio.gather(
            backend.generate_one(request), backend.generate_one(request)
        )
        # The stream decodes a batch of one: compare it with a batch of one. (A random-weight
        # model has near-tied logits, and a batch of two runs other matmul kernels, whose last
        # bits can flip a greedy choice.)
        alone = await backend.generate_one(request)
        deltas = [d async for d in backend.stream(request)]
        assert backend.info().batching and backend.count_tokens("the quick fox") == 3
        with pytest.raises(ContextWindowExceeded):
            await backend.generate_one(
                request.model_copy(update={"params": GenerationParams(max_tokens=200)})
            )
    assert first.text == second.text
    assert deltas[-1].finish_reason in {"stop", "length"} and deltas[-1].usage is not None
    assert "".join(d.text for d in deltas).strip() == alone.text.strip()


def test_catalogue_reports_availability(tmp_path: Path, tiny_llama: Path) -> None:
    from textnlp.backends.registry import ModelCatalogue

    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        f"  - {{id: tiny, backend: transformers, path: '{tiny_llama}', context_length: 128}}\n"
        "  - {id: gone, backend: transformers, path: /nowhere, context_length: 128}\n"
    )
    catalogue = ModelCatalogue.load(models)
    assert catalogue.describe("tiny").available
    gone = catalogue.describe("gone")
    assert not gone.available and "not found" in gone.reason


OOM = (
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity; "
    "process 4242 at /srv/models/private-finetune has 77.1 GiB in use)"
)


async def test_an_engine_failure_tells_callers_no_device_or_path(
    tiny_llama: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """torch's error text (the device, its memory, the server's paths; in a batch possibly
    another caller's request) reached every caller of the batch as the BackendUnavailable's
    message; callers now read the model and the error's class, the log the whole text."""
    from textnlp.backends.transformers import TransformersBackend
    from textnlp.errors import BackendUnavailable

    def out_of_memory(*_: object) -> object:
        raise RuntimeError(OOM)

    request = GenerationRequest(prompt="the quick", params=GenerationParams(max_tokens=3))
    async with TransformersBackend(spec(tiny_llama, batching="static")) as backend:
        backend._generate_sync = out_of_memory  # type: ignore[method-assign,assignment]
        failures = []
        for call in (backend.generate_one(request), collect_stream(backend, request)):
            with caplog.at_level("WARNING"), pytest.raises(BackendUnavailable) as caught:
                await call
            failures.append(caught.value.message)
    for message in failures:
        assert "GiB" not in message and "/srv" not in message and "RuntimeError" in message
    assert OOM in caplog.text


async def collect_stream(backend: object, request: GenerationRequest) -> None:
    async for _ in backend.stream(request):  # type: ignore[attr-defined]
        pass
