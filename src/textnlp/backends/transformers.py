"""Local Hugging Face models through transformers (GPT-J-6B, Llama-7B... on GPU hosts).

``path`` is a model directory (``save_pretrained`` layout), a ``.gguf`` file or
``embedded:smollm2``; a GGUF is converted once to a cached model directory (``hf_convert``,
needs the ``gguf`` package). Weights go to CUDA in bfloat16 when a GPU is present, else stay on
the CPU in float32.

Two batching modes (option ``batching``):

- ``continuous`` (the default): transformers' own continuous batching (``hf_continuous``) — a
  paged KV cache, requests join and leave the running batch at every step, each with its own
  ``max_tokens``; prompts sharing a prefix share its cache blocks; stop strings cancel a
  request as soon as they appear. Measured on the CPU (``bench/hf_batching.py``, SmolLM2-135M
  float32, 2 cores): a tie with static micro-batches on bursts of equal requests (0.97x at 8,
  0.98x at 32), ahead when lengths differ and clients send as answers come (1.41x at 8 clients,
  1.14x at 32), which is what a dataset run does. On GPU hosts ``bench/gpu_check.sh`` measures
  the same comparison in bfloat16; that figure decides the default there.
- ``static``: requests arriving within ``batch_window_ms`` are left-padded into one
  ``model.generate`` call of up to ``max_batch_size``, decoded until its longest request ends.

Sampling, in both modes: temperature, top-k (option ``top_k``, default 50 as transformers'
``generate``) then top-p, drawn per request from its own seed (``hf_sampling``). So a seeded
request gives the same text alone or in any batch, in either mode, and greedy requests are
plain argmax — up to float rounding: a batch of another shape runs other kernels, whose last bits
can flip a near-tie between two tokens (rare in float32 on the CPU, likelier in bfloat16 on a
GPU). A sampled request without a seed gets a random one.

Other options: ``max_batch_size`` (static: the micro-batch; continuous: sequences per step,
default 32), ``cache_tokens`` and ``max_batch_tokens`` (continuous: the KV cache's capacity and
the tokens per forward step; by default the cache takes half the GPU memory left free after
loading, with transformers' 8192 tokens per step, and on the CPU they are 16384 and 512; a
request holds cache pages of 256 tokens), ``device``, ``dtype``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textnlp.backends import chat_pieces
from textnlp.backends.base import Backend, collect, installed, unavailable
from textnlp.backends.llamacpp import EMBEDDED, resolve_model_path
from textnlp.backends.options import TransformersOptions
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, FinishReason, GenerationRequest, TokenDelta, Usage
from textnlp.errors import BackendUnavailable, InvalidRequest

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from textnlp.backends.hf_continuous import ContinuousEngine


@dataclass
class _Pending:
    request: GenerationRequest
    prompt_ids: list[int]
    future: asyncio.Future[Completion]
    seed: int | None = None
    started: float = field(default_factory=time.perf_counter)


def _seed(request: GenerationRequest) -> int | None:
    """The request's sampling seed (a random one when it has none); None: greedy."""
    params = request.params
    if params.temperature == 0:
        return None
    return params.seed if params.seed is not None else secrets.randbits(32)


def _model_source(path: str | None) -> Path | None:
    """A model directory or GGUF file for the catalogue ``path`` (None: not found here)."""
    if path is None:
        return None
    if path in EMBEDDED:
        return resolve_model_path(path)
    candidate = Path(path).expanduser()
    return candidate if candidate.exists() else None


class TransformersBackend(Backend):
    name = "transformers"
    batching = True

    def __init__(self, spec: ModelSpec, **options: Any) -> None:
        """``options`` override the catalogue's (benchmarks, tests)."""
        super().__init__(spec)
        self.options = TransformersOptions.model_validate({**spec.options, **options})
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._eos: set[int] = set()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._engine: ContinuousEngine | None = None
        # One generate() at a time: the model is not re-entrant across threads.
        self._gpu_lock = threading.Lock()

    @classmethod
    def availability(cls, spec: ModelSpec) -> tuple[bool, str]:
        if not installed("transformers", "torch"):
            return False, "transformers/torch not installed (pip install 'textnlp[hf]')"
        if _model_source(spec.path) is None:
            return False, f"model path not found: {spec.path}"
        return True, ""

    async def load(self) -> None:
        if self._model is not None:
            return
        ok, reason = self.availability(self.spec)
        if not ok:
            raise unavailable(self.spec, reason)
        await asyncio.to_thread(self._load_sync)
        if self.options.batching == "continuous":
            await asyncio.to_thread(self._start_engine)
        else:
            self._queue = asyncio.Queue()
            self._batcher = asyncio.create_task(self._batch_loop(), name=f"batcher:{self.spec.id}")

    def _load_sync(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = _model_source(self.spec.path)
        assert path is not None  # availability said so
        if path.is_file() and path.suffix == ".gguf":
            from textnlp.backends.hf_convert import converted

            path = converted(path)
        self._device = str(self.options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype_name = self.options.dtype or (
            "bfloat16" if self._device.startswith("cuda") else "float32"
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype_name))
        model.to(self._device)
        model.eval()
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self._eos = {t for t in [*eos, tokenizer.eos_token_id] if t is not None}
        self._tokenizer, self._model = tokenizer, model

    def _start_engine(self) -> None:
        from textnlp.backends.hf_continuous import ContinuousEngine

        engine = ContinuousEngine(
            self._model,
            eos=sorted(self._eos),
            pad=self._tokenizer.pad_token_id,
            max_requests=self.options.max_batch_size,
            cache_tokens=self.options.cache_tokens,
            max_batch_tokens=self.options.max_batch_tokens,
            top_k=self.options.top_k,
            warmup=self.options.warmup,
        )
        engine.start()
        self._engine = engine

    async def aclose(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
            self._batcher = None
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)
        self._model = self._tokenizer = None

    def count_tokens(self, text: str) -> int:
        return len(self._require_tokenizer()(text, add_special_tokens=False)["input_ids"])

    def _require_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise BackendUnavailable("backend not loaded", backend=self.name, model=self.spec.id)
        return self._tokenizer

    def prompt_token_count(self, request: GenerationRequest) -> int:
        return len(self.prompt_ids(request))

    def render(self, request: GenerationRequest) -> str:
        """The prompt as text (chat template applied); the model reads ``prompt_ids``."""
        tokenizer = self._require_tokenizer()
        if request.prompt is not None or not getattr(tokenizer, "chat_template", None):
            return request.as_text()
        messages, prefill = chat_pieces.messages_of(request)
        return self._chat_template(messages) + prefill

    def _chat_template(self, messages: list[dict[str, str]]) -> str:
        rendered: str = self._require_tokenizer().apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return rendered

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The token ids the model reads for ``request``: the template's text with its control
        tokens, what the messages (or a raw prompt) say as text (``chat_pieces``)."""
        tokenizer = self._require_tokenizer()

        def ids(text: str, special: bool) -> list[int]:
            encoded = tokenizer(text, add_special_tokens=False, split_special_tokens=not special)
            return list(encoded["input_ids"])

        if request.prompt is not None or not getattr(tokenizer, "chat_template", None):
            return ids(request.as_text(), request.control_tokens)
        messages, prefill = chat_pieces.messages_of(request)
        marked, marks = chat_pieces.mark(messages)
        contents = [m["content"] for m in messages] + [prefill]
        pieces = chat_pieces.segments(self._chat_template(marked), marks, contents)
        if pieces is None:  # the template drops, repeats or rewrites a message: as it renders
            return ids(self.render(request), True)
        return [token for text, special in pieces for token in ids(text, special)]

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        if self._engine is not None:
            return list(
                await asyncio.gather(
                    *(collect(self.spec.id, self._run(r, stream=False)) for r in requests)
                )
            )
        if self._queue is None:
            raise BackendUnavailable("backend not loaded", backend=self.name, model=self.spec.id)
        loop = asyncio.get_running_loop()
        pending = []
        for request in requests:
            prompt_ids = self.prompt_ids(request)
            self.check_context(len(prompt_ids), request.params.max_tokens)
            item = _Pending(request, prompt_ids, loop.create_future(), _seed(request))
            pending.append(item)
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(p.future for p in pending)))

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        if request.params.n != 1:
            raise InvalidRequest("streaming supports n=1", backend=self.name, model=self.spec.id)
        if self._engine is not None:
            return self._run(request, stream=True)
        return self._stream_static(request)

    def _failed(self, exc: BaseException) -> BackendUnavailable:
        """What callers read of the engine failing (torch's text names the device, its memory
        and the server's paths; in a batch, the failure may be another caller's request): the
        model and the error's class, the whole text to the log."""
        log.warning("model %s failed: %s: %s", self.spec.id, type(exc).__name__, exc)
        return BackendUnavailable(
            f"model {self.spec.id} failed on its device ({type(exc).__name__}); the server's "
            "log has the details",
            backend=self.name,
            model=self.spec.id,
        )

    # The continuous mode.

    async def _run(self, request: GenerationRequest, *, stream: bool) -> AsyncIterator[TokenDelta]:
        from textnlp.backends.hf_continuous import sampling_kwargs

        engine = self._engine
        if engine is None:
            raise BackendUnavailable("backend not loaded", backend=self.name, model=self.spec.id)
        params = request.params
        prompt_ids = self.prompt_ids(request)
        self.check_context(len(prompt_ids), params.max_tokens)
        sampling = sampling_kwargs(
            temperature=params.temperature,
            top_p=params.top_p,
            seed=_seed(request),
            ignore_eos=request.ignore_eos,
        )
        steps = engine.tokens(
            prompt_ids,
            max_new_tokens=params.max_tokens,
            sampling=sampling,
            ignore_eos=request.ignore_eos,
            # Stop strings are looked for at every step, so the request ends as they appear.
            stream=stream or bool(params.stop),
        )
        sent, text = "", ""
        kept: list[int] = []
        finish: FinishReason = "length"
        try:
            async with contextlib.aclosing(steps):
                async for tokens in steps:
                    kept, finish = self._until_eos(tokens, request)
                    text = self._tokenizer.decode(kept, skip_special_tokens=True)
                    text, stopped = _cut_at_stop(text, params.stop)
                    if stopped:
                        finish = "stop"
                    if stream:
                        safe = _safe_prefix(text, params.stop, final=stopped)
                        if len(safe) > len(sent):
                            yield TokenDelta(text=safe[len(sent) :])
                            sent = safe
                    if stopped:
                        break
        except RuntimeError as exc:
            raise self._failed(exc) from exc
        usage = Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(kept))
        yield TokenDelta(text=text[len(sent) :], finish_reason=finish, usage=usage)

    def _until_eos(
        self, tokens: list[int], request: GenerationRequest
    ) -> tuple[list[int], FinishReason]:
        """The answer's tokens (end-of-sequence cut off) and why it ended so far."""
        limit = request.params.max_tokens
        if not request.ignore_eos:
            for at, token in enumerate(tokens[:limit]):
                if token in self._eos:
                    return tokens[:at], "stop"
        return tokens[:limit], "length"

    # The static mode.

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
            try:
                results = await asyncio.to_thread(self._generate_sync, batch)
            except Exception as exc:  # noqa: BLE001 - handed to every waiter
                error = self._failed(exc)
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            for item, completion in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(completion)

    def _generate_sync(self, group: list[_Pending], streamer: Any = None) -> list[Completion]:
        """One ``generate`` call for ``group``; each row samples with its own settings."""
        import torch

        from textnlp.backends.hf_sampling import SeededSampler, static_processors

        tokenizer, model = self._tokenizer, self._model
        inputs = tokenizer.pad(
            {"input_ids": [item.prompt_ids for item in group]}, padding=True, return_tensors="pt"
        ).to(self._device)
        prompt_width = inputs["input_ids"].shape[1]
        sampler = SeededSampler(
            seeds=[item.seed for item in group],
            temperatures=[item.request.params.temperature for item in group],
            top_ps=[item.request.params.top_p for item in group],
            banned=[sorted(self._eos) if item.request.ignore_eos else [] for item in group],
            prompt_width=prompt_width,
            top_k=self.options.top_k,
        )
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(item.request.params.max_tokens for item in group),
            "pad_token_id": tokenizer.pad_token_id,
            "do_sample": False,  # the sampler's noise makes argmax a draw
            "logits_processor": static_processors(sampler),
        }
        if streamer is not None:
            kwargs["streamer"] = streamer
        with self._gpu_lock, torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        return [
            self._completion(item, output[row, prompt_width:].tolist())
            for row, item in enumerate(group)
        ]

    def _completion(self, item: _Pending, new_tokens: list[int]) -> Completion:
        kept, finish = self._until_eos(new_tokens, item.request)
        text = self._tokenizer.decode(kept, skip_special_tokens=True)
        text, stopped = _cut_at_stop(text, item.request.params.stop)
        prompt_tokens = len(item.prompt_ids)
        return Completion(
            text=text,
            finish_reason="stop" if stopped else finish,
            model=self.spec.id,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(kept)),
            latency_s=time.perf_counter() - item.started,
        )

    async def _stream_static(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Tokens through ``TextIteratorStreamer`` (one request, its own generate call)."""
        from transformers import TextIteratorStreamer

        tokenizer = self._require_tokenizer()
        prompt_ids = self.prompt_ids(request)
        self.check_context(len(prompt_ids), request.params.max_tokens)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        future = asyncio.get_running_loop().create_future()
        item = _Pending(request, prompt_ids, future, _seed(request))
        worker = threading.Thread(target=self._stream_sync, args=(item, streamer), daemon=True)
        worker.start()
        iterator = iter(streamer)
        while True:
            piece = await asyncio.to_thread(next, iterator, None)
            if piece is None:
                break
            yield TokenDelta(text=piece)
        completion = await item.future
        yield TokenDelta(text="", finish_reason=completion.finish_reason, usage=completion.usage)

    def _stream_sync(self, item: _Pending, streamer: Any) -> None:
        loop = item.future.get_loop()
        try:
            completion = self._generate_sync([item], streamer)[0]
            loop.call_soon_threadsafe(item.future.set_result, completion)
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            streamer.end()
            error = self._failed(exc)
            loop.call_soon_threadsafe(item.future.set_exception, error)


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to its first stop string, and whether one was found."""
    cut = min((at for at in (text.find(s) for s in stops if s) if at != -1), default=-1)
    return (text[:cut], True) if cut != -1 else (text, False)


def _safe_prefix(text: str, stops: Sequence[str], *, final: bool) -> str:
    """What a stream may send of ``text`` now: not a trailing part of a character still being
    decoded, nor a tail that may be the start of a stop string."""
    if final:
        return text
    text = text.rstrip("\ufffd")  # the bytes of a character not complete yet
    held = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), held, -1):
            if text.endswith(stop[:size]):
                held = size
                break
    return text[: len(text) - held]
