"""A continuous-batching decoder on llama.cpp's multi-sequence batch API.

Requests that arrive together are decoded together: every step fills one ``llama_batch`` with
the next token of each running sequence plus chunks of newly admitted prompts, calls
``llama_decode`` once, and samples each sequence from its own logits row with its own sampler
chain (so seeds stay per request). Each sequence owns a KV-cache stream (``kv_unified`` off),
so attention cost per token does not grow with the number of neighbours.

The loop runs in one dedicated thread (llama.cpp calls release the GIL); results travel back to
asyncio through ``call_soon_threadsafe``. Nothing here knows about HTTP, templates or files.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import heapq
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
from llama_cpp import _internals as internals

#: (text delta, finish reason or None, completion tokens so far)
Emit = Callable[[str, str | None, int], None]


@dataclass
class SequenceJob:
    """One request as the engine sees it."""

    prompt_tokens: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    ignore_eos: bool
    emit: Emit
    #: Candidates kept before top-p (0 = all). Sorting the whole vocabulary for top-p costs
    #: ~0.6 ms a token on a 49k vocabulary; llama.cpp and llama-cpp-python default to 40 too.
    top_k: int = 40
    #: Emit each piece as it is decoded; otherwise only once, when the sequence ends (no
    #: per-token wake-ups of the event loop, which competes with the decoding threads).
    stream: bool = True
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Running:
    job: SequenceJob
    slot: int
    sampler: internals.LlamaSampler
    decoder: codecs.IncrementalDecoder
    n_prompt_done: int = 0
    n_generated: int = 0
    next_token: int = -1
    text: str = ""
    emitted: int = 0
    batch_index: int = -1

    @property
    def next_position(self) -> int:
        """KV position of ``next_token``, sampled but not yet decoded."""
        return self.n_prompt_done + self.n_generated - 1


class BatchingEngine:
    """Owns a llama.cpp model and context; decodes up to ``n_parallel`` sequences at once."""

    def __init__(
        self,
        model_path: str,
        *,
        n_parallel: int = 32,
        n_ctx_per_seq: int = 2048,
        n_batch: int = 512,
        n_threads: int = 0,
    ) -> None:
        self.n_parallel = n_parallel
        self.n_ctx_per_seq = n_ctx_per_seq
        self.n_batch = max(n_batch, n_parallel)
        threads = n_threads or os.cpu_count() or 1

        silence_llama_logs()
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        self.model = internals.LlamaModel(path_model=model_path, params=model_params, verbose=False)
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = n_ctx_per_seq * n_parallel
        ctx_params.n_batch = self.n_batch
        ctx_params.n_ubatch = self.n_batch
        ctx_params.n_seq_max = n_parallel
        ctx_params.kv_unified = False
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        self.ctx = internals.LlamaContext(model=self.model, params=ctx_params, verbose=False)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model.model)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._memory = llama_cpp.llama_get_memory(self.ctx.ctx)

        self._incoming: queue.Queue[SequenceJob | None] = queue.Queue()
        self._running: list[_Running] = []
        self._free_slots = list(range(n_parallel))  # a heap: the lowest free slot first
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llamacpp-engine", daemon=True)
        self._thread.start()

    # -- tokenizer helpers (thread-safe: they only read the vocabulary) --------------------

    def tokenize(self, text: str, *, add_bos: bool, special: bool = True) -> list[int]:
        tokens: list[int] = self.model.tokenize(text.encode("utf-8"), add_bos, special)
        return tokens

    def piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model.metadata()
        return data

    # -- public API -------------------------------------------------------------------------

    def submit(self, job: SequenceJob) -> None:
        if self._closed.is_set():
            raise RuntimeError("engine is closed")
        self._incoming.put(job)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._incoming.put(None)
        self._thread.join()
        llama_cpp.llama_batch_free(self._batch)
        self.ctx.close()
        self.model.close()

    # -- the decode loop (engine thread only) ---------------------------------------------------

    def _loop(self) -> None:
        while not self._closed.is_set():
            if not self._admit(block=not self._running):
                break
            if not self._running:
                continue
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - report to every waiter, keep serving
                for running in self._running:
                    self._finish(running, "error", error=str(exc))
                self._running.clear()
        for running in self._running:
            self._finish(running, "error", error="engine closed")

    def _admit(self, *, block: bool) -> bool:
        """Move waiting jobs into free slots. False when the engine is shutting down."""
        while self._free_slots:
            try:
                job = self._incoming.get(block=block)
            except queue.Empty:
                return True
            if job is None:
                return False
            block = False
            if job.cancelled.is_set():
                continue
            slot = heapq.heappop(self._free_slots)
            self._running.append(
                _Running(
                    job=job,
                    slot=slot,
                    sampler=_sampler(job),
                    decoder=codecs.getincrementaldecoder("utf-8")(errors="replace"),
                )
            )
            # Tokens must reach llama_decode in ascending sequence order: with one KV stream
            # per sequence, an unordered batch is split into many small ubatches (4x slower).
            self._running.sort(key=lambda running: running.slot)
        return True

    def _step(self) -> None:
        batch = self._batch
        n = 0
        # One pass in slot order (see _admit). Running sequences get their next token first,
        # which keeps their latency flat; prompts of new sequences share what is left.
        decoding = sum(r.n_prompt_done == len(r.job.prompt_tokens) for r in self._running)
        budget = self.n_batch - decoding
        for running in self._running:
            prompt = running.job.prompt_tokens
            if running.n_prompt_done == len(prompt):
                token, position = running.next_token, running.next_position
                n = self._add(batch, n, token, position, running.slot, True)
                running.batch_index = n - 1
                continue
            take = min(len(prompt) - running.n_prompt_done, budget)
            for i in range(take):
                pos = running.n_prompt_done + i
                n = self._add(batch, n, prompt[pos], pos, running.slot, pos == len(prompt) - 1)
            budget -= take
            running.n_prompt_done += take
            running.batch_index = n - 1 if take and running.n_prompt_done == len(prompt) else -1
        batch.n_tokens = n
        status = llama_cpp.llama_decode(self.ctx.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        still_running = []
        for running in self._running:
            if running.batch_index >= 0 and not self._sample(running) or running.batch_index < 0:
                still_running.append(running)
            running.batch_index = -1
        self._running = still_running

    @staticmethod
    def _add(batch: Any, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
        batch.token[n] = token
        batch.pos[n] = pos
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = logits
        return n + 1

    def _sample(self, running: _Running) -> bool:
        """Sample the next token of ``running``; True when the sequence is finished."""
        job = running.job
        if job.cancelled.is_set():
            self._release(running)
            return True
        token = running.sampler.sample(self.ctx, running.batch_index)
        if not job.ignore_eos and llama_cpp.llama_vocab_is_eog(self.vocab, token):
            self._finish(running, "stop")
            return True
        running.n_generated += 1
        running.next_token = token
        running.text += running.decoder.decode(self.piece(token))
        stop_at = _find_stop(running.text, job.stop, running.emitted)
        if stop_at is not None:
            running.text = running.text[:stop_at]
            self._finish(running, "stop")
            return True
        out_of_room = running.next_position + 1 >= self.n_ctx_per_seq
        if running.n_generated >= job.max_tokens or out_of_room:
            self._finish(running, "length")
            return True
        if not job.stream:
            return False
        safe = len(running.text) - _held_back(running.text, job.stop)
        if safe > running.emitted:
            job.emit(running.text[running.emitted : safe], None, running.n_generated)
            running.emitted = safe
        return False

    def _finish(self, running: _Running, reason: str, error: str = "") -> None:
        running.text += running.decoder.decode(b"", final=True) if reason != "error" else ""
        tail = running.text[running.emitted :] if reason != "error" else error
        running.job.emit(tail, reason, running.n_generated)
        self._release(running)

    def _release(self, running: _Running) -> None:
        llama_cpp.llama_memory_seq_rm(self._memory, running.slot, -1, -1)
        running.sampler.close()
        heapq.heappush(self._free_slots, running.slot)


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _drop_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs every tensor and buffer at load; TextNLP keeps stderr for its own."""


def silence_llama_logs() -> None:
    if not os.environ.get("TEXTNLP_LLAMA_LOGS"):
        llama_cpp.llama_log_set(_drop_log, ctypes.c_void_p(0))


def _sampler(job: SequenceJob) -> internals.LlamaSampler:
    sampler = internals.LlamaSampler()
    if job.temperature <= 0.0:
        sampler.add_greedy()
        return sampler
    if job.top_k > 0:
        sampler.add_top_k(job.top_k)
    if job.top_p < 1.0:
        sampler.add_top_p(job.top_p, 1)
    sampler.add_temp(job.temperature)
    seed = job.seed if job.seed is not None else int(time.time_ns() & 0xFFFFFFFF)
    sampler.add_dist(seed)
    return sampler


def _find_stop(text: str, stops: tuple[str, ...], emitted: int) -> int | None:
    """Where the first stop string starts in the not-yet-emitted part of ``text``."""
    best: int | None = None
    for stop in stops:
        at = text.find(stop, max(0, emitted - len(stop) + 1))
        if at != -1 and (best is None or at < best):
            best = at
    return best


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters could be the start of a stop string (not sent yet)."""
    held = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                held = max(held, size)
                break
    return held


def emit_to_queue(
    loop: asyncio.AbstractEventLoop, sink: asyncio.Queue[tuple[str, str | None, int]]
) -> Emit:
    """An ``Emit`` that hands results to an asyncio queue from the engine thread."""

    def emit(text: str, finish: str | None, n_generated: int) -> None:
        loop.call_soon_threadsafe(sink.put_nowait, (text, finish, n_generated))

    return emit
