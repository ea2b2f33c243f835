"""Local Hugging Face models through transformers (GPT-J-6B, Llama-7B... on GPU hosts).

``path`` is a model directory (``save_pretrained`` layout) or a ``.gguf`` file, which
transformers dequantises (needs the ``gguf`` package). Weights go to CUDA in bfloat16 when a GPU
is present, else stay on the CPU in float32.

Batching: requests that arrive within a few milliseconds of each other and share their sampling
settings are padded (left) into one ``generate`` call — static micro-batches, which is what
``model.generate`` supports. One ``generate`` call has one random generator, so a batch is
seeded with its first request's seed: results are reproducible for the same batch, not per
request (the llama.cpp engine seeds each sequence on its own). Options: ``max_batch_size``
(default 32), ``batch_window_ms`` (default 5), ``device``, ``dtype``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textnlp.backends.base import Backend, installed
from textnlp.backends.options import TransformersOptions
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, TokenDelta, Usage
from textnlp.errors import BackendUnavailable, InvalidRequest


@dataclass
class _Pending:
    request: GenerationRequest
    prompt: str
    future: asyncio.Future[Completion]
    started: float = field(default_factory=time.perf_counter)


class TransformersBackend(Backend):
    name = "transformers"
    batching = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.options = TransformersOptions.of(spec)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._queue: asyncio.Queue[_Pending] | None = None
        self._batcher: asyncio.Task[None] | None = None
        # One generate() at a time: the model is not re-entrant across threads.
        self._gpu_lock = threading.Lock()

    @classmethod
    def availability(cls, spec: ModelSpec) -> tuple[bool, str]:
        if not installed("transformers", "torch"):
            return False, "transformers/torch not installed (pip install 'textnlp[hf]')"
        if spec.path is None or not Path(spec.path).expanduser().exists():
            return False, f"model path not found: {spec.path}"
        return True, ""

    async def load(self) -> None:
        if self._model is not None:
            return
        ok, reason = self.availability(self.spec)
        if not ok:
            raise BackendUnavailable(reason, backend=self.name, model=self.spec.id)
        await asyncio.to_thread(self._load_sync)
        self._queue = asyncio.Queue()
        self._batcher = asyncio.create_task(self._batch_loop(), name=f"batcher:{self.spec.id}")

    def _load_sync(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(str(self.spec.path)).expanduser()
        kwargs: dict[str, Any] = {}
        source = str(path)
        if path.is_file() and path.suffix == ".gguf":
            source, kwargs["gguf_file"] = str(path.parent), path.name
        self._device = str(self.options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype_name = self.options.dtype or (
            "bfloat16" if self._device.startswith("cuda") else "float32"
        )
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype_name), **kwargs
        )
        model.to(self._device)
        model.eval()
        self._tokenizer, self._model = tokenizer, model

    async def aclose(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
            self._batcher = None
        self._model = self._tokenizer = None

    def count_tokens(self, text: str) -> int:
        return len(self._require_tokenizer()(text, add_special_tokens=False)["input_ids"])

    def _require_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise BackendUnavailable("backend not loaded", backend=self.name, model=self.spec.id)
        return self._tokenizer

    def render(self, request: GenerationRequest) -> str:
        tokenizer = self._require_tokenizer()
        if request.prompt is not None or not getattr(tokenizer, "chat_template", None):
            return request.as_text()
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        # A trailing assistant message is a prefill the answer continues (as llama.cpp's).
        prefill = messages.pop()["content"] if messages[-1]["role"] == "assistant" else ""
        rendered: str = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return rendered + prefill

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        if self._queue is None:
            raise BackendUnavailable("backend not loaded", backend=self.name, model=self.spec.id)
        loop = asyncio.get_running_loop()
        pending = []
        for request in requests:
            prompt = self.render(request)
            self.check_context(self.count_tokens(prompt), request.params.max_tokens)
            item = _Pending(request, prompt, loop.create_future())
            pending.append(item)
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(p.future for p in pending)))

    async def _batch_loop(self) -> None:
        assert self._queue is not None
        max_batch = self.options.max_batch_size
        window = self.options.batch_window_ms / 1000
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = time.perf_counter() + window
            while len(batch) < max_batch:
                try:
                    timeout = max(0.0, deadline - time.perf_counter())
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            for group in _compatible_groups(batch):
                try:
                    results = await asyncio.to_thread(self._generate_sync, group)
                except Exception as exc:  # noqa: BLE001 - handed to every waiter
                    error = BackendUnavailable(str(exc), backend=self.name, model=self.spec.id)
                    for item in group:
                        if not item.future.done():
                            item.future.set_exception(error)
                    continue
                for item, completion in zip(group, results, strict=True):
                    if not item.future.done():
                        item.future.set_result(completion)

    def _generate_sync(self, group: list[_Pending]) -> list[Completion]:
        import torch

        tokenizer, model = self._tokenizer, self._model
        params = group[0].request.params
        inputs = tokenizer(
            [item.prompt for item in group],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(self._device)
        max_new = max(item.request.params.max_tokens for item in group)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": tokenizer.pad_token_id}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False)
        if group[0].request.ignore_eos:
            kwargs.update(min_new_tokens=max_new)
        with self._gpu_lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            output = model.generate(**inputs, **kwargs)
        prompt_width = inputs["input_ids"].shape[1]
        completions = []
        eos = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        for row, item in enumerate(group):
            completions.append(self._completion(item, output[row, prompt_width:].tolist(), eos))
        return completions

    def _completion(self, item: _Pending, new_tokens: list[int], eos: set[int]) -> Completion:
        limit = item.request.params.max_tokens
        finish = "length"
        kept: list[int] = []
        for token in new_tokens[:limit]:
            if token in eos and not item.request.ignore_eos:
                finish = "stop"
                break
            kept.append(token)
        text = self._tokenizer.decode(kept, skip_special_tokens=True)
        for stop in item.request.params.stop:
            at = text.find(stop)
            if at != -1:
                text, finish = text[:at], "stop"
        prompt_tokens = len(self._tokenizer(item.prompt, add_special_tokens=False)["input_ids"])
        return Completion(
            text=text,
            finish_reason=finish,
            model=self.spec.id,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(kept)),
            latency_s=time.perf_counter() - item.started,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Tokens through ``TextIteratorStreamer`` (one request, its own generate call)."""
        from transformers import TextIteratorStreamer

        tokenizer = self._require_tokenizer()
        prompt = self.render(request)
        prompt_tokens = self.count_tokens(prompt)
        self.check_context(prompt_tokens, request.params.max_tokens)
        if request.params.n != 1:
            raise InvalidRequest("streaming supports n=1", backend=self.name, model=self.spec.id)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        item = _Pending(request, prompt, asyncio.get_running_loop().create_future())
        worker = threading.Thread(target=self._stream_sync, args=(item, streamer), daemon=True)
        worker.start()
        text = ""
        iterator = iter(streamer)
        while True:
            piece = await asyncio.to_thread(next, iterator, None)
            if piece is None:
                break
            text += piece
            yield TokenDelta(text=piece)
        completion = await item.future
        yield TokenDelta(text="", finish_reason=completion.finish_reason, usage=completion.usage)

    def _stream_sync(self, item: _Pending, streamer: Any) -> None:
        loop = item.future.get_loop()
        try:
            completion = self._generate_streaming(item, streamer)
            loop.call_soon_threadsafe(item.future.set_result, completion)
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            streamer.end()
            error = BackendUnavailable(str(exc), backend=self.name, model=self.spec.id)
            loop.call_soon_threadsafe(item.future.set_exception, error)

    def _generate_streaming(self, item: _Pending, streamer: Any) -> Completion:
        import torch

        params = item.request.params
        inputs = self._tokenizer([item.prompt], return_tensors="pt", add_special_tokens=False)
        inputs = inputs.to(self._device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self._tokenizer.pad_token_id,
            "streamer": streamer,
        }
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        with self._gpu_lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            output = self._model.generate(**inputs, **kwargs)
        eos = {self._tokenizer.eos_token_id, self._tokenizer.pad_token_id} - {None}
        new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
        return self._completion(item, new_tokens, eos)


def _compatible_groups(batch: list[_Pending]) -> list[list[_Pending]]:
    """Split a micro-batch by the settings one ``generate`` call must share."""
    groups: dict[tuple[Any, ...], list[_Pending]] = {}
    for item in batch:
        p = item.request.params
        key = (p.temperature, p.top_p, item.request.ignore_eos)
        groups.setdefault(key, []).append(item)
    return list(groups.values())
