"""A continuous-batching decoder on llama.cpp's multi-sequence batch API.

Requests that arrive together are decoded together: every step prefills a chunk of each new
prompt and decodes the next token of every running sequence (in one ``llama_decode`` when the
chunks allow, see ``_step``), and samples each sequence from its own logits row with its own
sampler chain (so seeds stay per request). Each sequence owns a KV-cache stream (``kv_unified``
off), so attention cost per token does not grow with the number of neighbours.

Prompt prefixes are prefilled once: a slot keeps the KV of its last sequence when it is freed,
a new request takes the free slot that already holds the longest prefix of its prompt, and a
sequence whose prefix sits in another slot (a template's system prompt, shared by every record)
copies that slot's KV instead of computing it (``llama_memory_seq_cp``); sequences admitted
together wait for the first of them to prefill what they share. When every slot is busy, a
freed slot goes straight to the next request and its KV would be lost just before it is wanted
(a judge retrying the same prompt, a second criterion over the same text): it is first copied to
the shelf, a few extra streams that keep the most recently evicted prompts to copy from. With a
``PrefixStore``, prompts also outlive the process: a prompt mostly new to the store has its KV
saved once prefilled, and a later prompt (another run's) loads the saved one that shares the
longest prefix with it when no stream holds a longer one.

A sequence's tokens do not depend on its neighbours, on when it arrived, or on whether its
prefix was computed or copied. Per row, llama.cpp's CPU kernels for the engine's weights (Q8_0
matmuls, flash attention under 64 query rows of one sequence) compute the same sums whatever
else is in the batch; the engine keeps to them (``MAX_PREFILL_ROWS``, equal prompt chunks per
step, see ``_step``) and keeps a long sequence from being decoded alone (see ``_pads``).

The loop runs in one dedicated thread (llama.cpp calls release the GIL); results travel back to
asyncio through ``call_soon_threadsafe``. Nothing here knows about HTTP, templates or files.
"""

from __future__ import annotations

import asyncio
import bisect
import codecs
import ctypes
import hashlib
import math
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals as internals

from textnlp.backends.kv_store import PrefixStore, PrefixStoreConfig, common_prefix

#: (text delta, finish reason or None, completion tokens so far)
Emit = Callable[[str, str | None, int], None]

#: Prompt rows of one sequence per decode. From 64 rows (GGML_FA_TILE_Q) llama.cpp's CPU flash
#: attention switches to a tiled kernel whose sums round differently; below it every row is
#: computed alike however the prompt is cut, so a reused prefix reads like a full prefill.
MAX_PREFILL_ROWS = 63

#: Cached cells from which llama.cpp attends for a lone single token with its split-KV kernel
#: (it pads the cache view to 256 cells and splits from 512); a little early to be safe.
_SPLIT_KV_FROM = 240

#: Grammar masks kept (a vocabulary's worth of booleans each, 49 KB for SmolLM2), see
#: ``_Sampling``.
GRAMMAR_MASKS = 256

#: The shortest prompt chunk that shares a ``llama_decode`` with decoding sequences (``_merges``).
MERGE_MIN_CHUNK = 3

#: Idle slots between two busy ones filled with a pad row rather than left to split the batch.
_GAP_FILL = 4

#: The shortest prompt tail worth shelving: a copy moves a whole KV stream, and a shelved prompt
#: may never be asked for again, so a short one (a record's own variables) is computed again.
#: The same holds for saving a prompt's state to the prefix store and loading one from it.
SHELF_MIN_TOKENS = 32


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
    #: A GBNF grammar every sampled token must keep to (None: any token).
    grammar: str | None = None
    #: The prompt's KV may go to the prefix store (a recipe's cells; never a user's request).
    keep_prompt: bool = False
    #: Whose cached prompts this one may reuse (a server's user id; None: the process's own
    #: work). A stream holds one scope's tokens, and a job reuses, copies or waits for only its
    #: own scope's: how fast a prompt starts must not tell one user what another's began with.
    #: The prefix store on disk is the unscoped work's alone.
    scope: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    #: Built by ``submit``, in the caller's thread: a grammar that does not parse is refused
    #: there, not in the decode loop.
    sampler: _Sampling | None = None


@dataclass
class _Running:
    job: SequenceJob
    slot: int
    sampler: _Sampling
    decoder: codecs.IncrementalDecoder
    n_prompt_done: int = 0
    n_generated: int = 0
    next_token: int = -1
    text: str = ""
    emitted: int = 0

    @property
    def prefilled(self) -> bool:
        return self.n_prompt_done == len(self.job.prompt_tokens)

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
        reuse_prefix: bool = True,
        copy_min_tokens: int = 4,
        shelf_streams: int = 16,
        prefix_store: PrefixStoreConfig | None = None,
        llama_logs: bool = False,
    ) -> None:
        self.n_parallel = n_parallel
        self.n_ctx_per_seq = n_ctx_per_seq
        self.n_batch = max(n_batch, n_parallel + 1)
        self.reuse_prefix = reuse_prefix
        #: Copying a prefix copies the whole KV stream (llama.cpp copies streams, not cells), so
        #: it only pays for a prefix this long or longer; shorter ones are prefilled again.
        self.copy_min_tokens = copy_min_tokens
        threads = n_threads or os.cpu_count() or 1

        set_llama_logs(llama_logs)
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        # verbose=True: llama.cpp's logs are silenced by their callback above; verbose=False
        # would also dup2 the process's stdout and stderr to /dev/null while loading, which two
        # loads at once (two library runs in threads) left pointing there for good.
        self.model = internals.LlamaModel(path_model=model_path, params=model_params, verbose=True)
        ctx_params = llama_cpp.llama_context_default_params()
        # Streams: the slots, a spare sequence after the last slot (see _pads), then the shelf.
        shelf = range(n_parallel + 1, n_parallel + 1 + (shelf_streams if reuse_prefix else 0))
        n_streams = n_parallel + 1 + len(shelf)
        ctx_params.n_ctx = n_ctx_per_seq * n_streams
        ctx_params.n_batch = self.n_batch
        ctx_params.n_ubatch = self.n_batch
        ctx_params.n_seq_max = n_streams
        ctx_params.kv_unified = False
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        self.ctx = internals.LlamaContext(model=self.model, params=ctx_params, verbose=True)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model.model)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        #: Where a pick a grammar refused is sampled again (engine thread only).
        self._candidates = _Candidates(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self._memory = llama_cpp.llama_get_memory(self.ctx.ctx)
        self.prefix_store = (
            _open_store(prefix_store, model_path, n_streams) if reuse_prefix else None
        )

        self._incoming: queue.Queue[SequenceJob | None] = queue.Queue()
        self._running: list[_Running] = []
        self._free_slots = list(range(n_parallel))  # kept sorted: the lowest slot first
        #: Per stream, the tokens whose KV it holds at positions 0.. (kept when a slot is freed).
        self._cached: list[list[int]] = [[] for _ in range(n_streams)]
        #: Per stream, the scope (``SequenceJob.scope``) whose tokens it holds.
        self._scopes: list[str | None] = [None] * n_streams
        #: The shelf's streams, the least recently used first.
        self._shelf = list(shelf)
        #: Streams copied from since the last decode: llama.cpp copies a stream's data at the
        #: next decode, so loading a stored state into one now would change what the copy gets.
        self._copy_sources: set[int] = set()
        #: Per slot, the length of the prompt whose KV it holds (the rest was generated).
        self._prompt_lengths = [0] * n_parallel
        #: Prompt tokens computed, kept in a reused slot, copied from another stream, loaded from
        #: the prefix store; prompts shelved and saved.
        self.counters = {"prompt_tokens_computed": 0, "prompt_tokens_kept": 0,
                         "prompt_tokens_copied": 0, "prompts_shelved": 0,
                         "prompt_tokens_loaded": 0, "prompts_saved": 0}  # fmt: skip
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
        """Queue ``job``; ``ValueError`` when its grammar does not parse."""
        if self._closed.is_set():
            raise RuntimeError("engine is closed")
        job.sampler = _Sampling(job, self.vocab)
        self._incoming.put(job)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._incoming.put(None)
        self._thread.join()
        if self.prefix_store is not None:
            self.prefix_store.close()
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
            assert job.sampler is not None
            if job.cancelled.is_set():
                job.sampler.close()
                continue
            slot = self._pick_slot(job)
            self._free_slots.remove(slot)
            kept = self._shareable(job, slot)
            self._shelve(slot, kept)
            self._truncate(slot, kept)
            self._scopes[slot] = job.scope
            self._prompt_lengths[slot] = len(job.prompt_tokens)
            self.counters["prompt_tokens_kept"] += kept
            self._running.append(
                _Running(
                    job=job,
                    slot=slot,
                    sampler=job.sampler,
                    decoder=codecs.getincrementaldecoder("utf-8")(errors="replace"),
                    n_prompt_done=kept,
                )
            )
            # Tokens must reach llama_decode in ascending sequence order: with one KV stream
            # per sequence, an unordered batch is split into many small ubatches (4x slower).
            self._running.sort(key=lambda running: running.slot)
        return True

    def _pick_slot(self, job: SequenceJob) -> int:
        """The free slot holding the longest prefix of ``job``'s prompt (the lowest on a tie)."""
        if not self.reuse_prefix:
            return self._free_slots[0]
        best, best_kept = self._free_slots[0], -1
        for slot in self._free_slots:
            kept = self._shareable(job, slot)
            if kept > best_kept:
                best, best_kept = slot, kept
        return best

    def _shareable(self, job: SequenceJob, stream: int) -> int:
        """How many leading tokens of ``job``'s prompt ``stream`` holds for it (its scope's)."""
        if self._scopes[stream] != job.scope:
            return 0
        return self._reusable(job.prompt_tokens, self._cached[stream])

    def _reusable(self, prompt: list[int], cached: list[int]) -> int:
        """How many leading tokens of ``prompt`` a stream holding ``cached`` can skip."""
        if not self.reuse_prefix:
            return 0
        # The last prompt token is always decoded: its logits give the first new token.
        return min(common_prefix(prompt, cached), len(prompt) - 1)

    def _truncate(self, slot: int, keep: int) -> None:
        if len(self._cached[slot]) > keep:
            llama_cpp.llama_memory_seq_rm(self._memory, slot, keep, -1)
            del self._cached[slot][keep:]

    def _shelve(self, slot: int, kept: int) -> None:
        """Copy what ``slot`` holds past ``kept`` to the least recently used shelf stream, when
        the prompt it would lose is long enough to be worth it."""
        tokens = self._cached[slot]
        if not (self.reuse_prefix and self._shelf):  # reuse may be switched off after start
            return
        if self._prompt_lengths[slot] - kept < SHELF_MIN_TOKENS:
            return
        if any(
            common_prefix(tokens, self._cached[s]) == len(tokens)
            and self._scopes[s] == self._scopes[slot]
            for s in self._shelf
        ):
            return  # on the shelf already
        stream = self._shelf.pop(0)
        llama_cpp.llama_memory_seq_cp(self._memory, slot, stream, -1, -1)
        self._copy_sources.add(slot)
        self._cached[stream] = list(tokens)
        self._scopes[stream] = self._scopes[slot]
        self._shelf.append(stream)
        self.counters["prompts_shelved"] += 1

    def _borrow_prefix(self, running: _Running) -> None:
        """Copy another stream's KV when it holds a longer prefix of ``running``'s prompt."""
        source, best = -1, running.n_prompt_done + self.copy_min_tokens - 1
        for slot in range(len(self._cached)):
            kept = self._shareable(running.job, slot) if slot != running.slot else 0
            if kept > best:
                source, best = slot, kept
        if self._load_prefix(running, best):
            return
        if source < 0:
            return
        if source in self._shelf:  # used: the last to leave the shelf
            self._shelf.remove(source)
            self._shelf.append(source)
        # Across streams llama.cpp copies the whole stream (applied at the next decode, before
        # it computes), then the copy's tail past the shared prefix is dropped.
        llama_cpp.llama_memory_seq_cp(self._memory, source, running.slot, -1, -1)
        self._copy_sources.add(source)
        llama_cpp.llama_memory_seq_rm(self._memory, running.slot, best, -1)
        self._cached[running.slot] = self._cached[source][:best]
        self.counters["prompt_tokens_copied"] += best - running.n_prompt_done
        running.n_prompt_done = best

    def _load_prefix(self, running: _Running, floor: int) -> bool:
        """Load the stored state sharing the longest prefix with ``running``'s prompt, when it
        is longer than ``floor`` by ``SHELF_MIN_TOKENS``."""
        store = self.prefix_store
        prompt = running.job.prompt_tokens
        if store is None or running.job.scope is not None:
            return False
        found = store.match(prompt)
        if found is None:
            return False
        name, shared = found
        shared = min(shared, len(prompt) - 1)
        if shared < max(floor, running.n_prompt_done) + SHELF_MIN_TOKENS:
            return False
        state = store.read(name)
        if state is None:
            return False
        slot = running.slot
        if slot in self._copy_sources:
            self._flush_copies()
        llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(self.ctx.ctx, buffer, len(state), slot) == 0:
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)  # nothing half-loaded
            self._cached[slot] = []
            running.n_prompt_done = 0
            store.drop(name)
            return False
        llama_cpp.llama_memory_seq_rm(self._memory, slot, shared, -1)
        self._cached[slot] = prompt[:shared]
        self.counters["prompt_tokens_loaded"] += shared - running.n_prompt_done
        running.n_prompt_done = shared
        return True

    def _flush_copies(self) -> None:
        """Have llama.cpp make its pending stream copies now (a decode makes them first):
        one throwaway token on the spare stream, dropped after."""
        spare = self.n_parallel
        start = len(self._cached[spare])
        self._batch.n_tokens = self._add(self._batch, 0, 0, start, spare, True)
        status = llama_cpp.llama_decode(self.ctx.ctx, self._batch)
        llama_cpp.llama_memory_seq_rm(self._memory, spare, start, -1)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        self._copy_sources.clear()

    def _save_prompt(self, running: _Running) -> None:
        """Save the state of ``running``'s slot, which holds exactly its prompt now, when the
        prompt is mostly new to the store."""
        store, prompt = self.prefix_store, running.job.prompt_tokens
        if store is None or not running.job.keep_prompt or running.job.scope is not None:
            return
        if not store.worth_saving(prompt, SHELF_MIN_TOKENS):
            return
        size = llama_cpp.llama_state_seq_get_size(self.ctx.ctx, running.slot)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self.ctx.ctx, buffer, size, running.slot)
        if written:
            store.save(prompt, bytes(buffer)[:written])
            self.counters["prompts_saved"] += 1

    def _waits_for_leader(self, running: _Running, leaders: list[_Running]) -> bool:
        """Whether a sequence prefilling this step is computing a prefix worth copying."""
        prompt = running.job.prompt_tokens
        floor = running.n_prompt_done + self.copy_min_tokens
        for leader in leaders:
            if leader.job.scope != running.job.scope:
                continue
            shared = self._reusable(prompt, leader.job.prompt_tokens)
            if shared >= floor and shared > len(self._cached[leader.slot]):
                return True
        return False

    def _step(self) -> None:
        """Prefill what prompts can take this step and decode one token of every sequence, in
        one ``llama_decode`` when the prompt chunks allow it (see ``_merges``), else in two."""
        prefilling, chunk = self._prefill_chunks()
        decoding = [r for r in self._running if r.prefilled and r.next_token >= 0]
        if prefilling and decoding and self._merges(len(prefilling), chunk):
            self._compute(prefilling, chunk, decoding)
            return
        if prefilling:
            self._compute(prefilling, chunk, [])
        decoding = [r for r in self._running if r.prefilled and r.next_token >= 0]
        if decoding:
            self._compute([], 0, decoding)

    def _compute(self, prefilling: list[_Running], chunk: int, decoding: list[_Running]) -> None:
        """One ``llama_decode`` of ``chunk`` prompt tokens of each of ``prefilling`` and the
        next token of each of ``decoding``; samples every sequence whose prompt is done."""
        rows = self._prompt_rows(prefilling, chunk)
        rows.update({running.slot: [running.next_token] for running in decoding})
        done = [running for running in prefilling if running.prefilled]
        last_rows = self._decode(rows, {running.slot for running in [*decoding, *done]})
        for running in done:
            self._save_prompt(running)
        self._sample_all([*decoding, *done], last_rows)

    def _merges(self, n_prefilling: int, chunk: int) -> bool:
        """Whether this step's prompt chunks go into the decode's ``llama_decode``.

        A ``llama_decode`` costs a fixed part on top of its micro-batches, so one call beats
        two (a little: 0.99x the time, ``bench/engine_steps.py``). llama.cpp cuts the mixed
        batch by equal tokens per sequence: a prompt chunk whose slot sits among decoding ones
        gives its first token to their micro-batch and the rest to one of its own, so the rest
        must keep two rows or more (one lone row could take the split-KV kernel, see
        ``_pads``); and the batch must hold every slot's row besides the chunks.
        """
        room = self.n_batch - (self.n_parallel + 1)
        return chunk >= MERGE_MIN_CHUNK and chunk * n_prefilling <= room

    def _prompt_rows(self, prefilling: list[_Running], chunk: int) -> dict[int, list[int]]:
        """The next ``chunk`` prompt tokens of each sequence in ``prefilling``, now counted."""
        rows = {
            r.slot: r.job.prompt_tokens[r.n_prompt_done : r.n_prompt_done + chunk]
            for r in prefilling
        }
        for running in prefilling:
            running.n_prompt_done += chunk
        self.counters["prompt_tokens_computed"] += chunk * len(prefilling)
        return rows

    def _prefill_chunks(self) -> tuple[list[_Running], int]:
        """The sequences that prefill this step, and the length of the chunk each one takes."""
        chosen: list[_Running] = []
        for running in self._running:
            if running.prefilled:
                continue
            if self.reuse_prefix:
                if self._waits_for_leader(running, chosen):
                    continue
                self._borrow_prefix(running)
            chosen.append(running)
        if not chosen:
            return [], 0
        left = min(len(r.job.prompt_tokens) - r.n_prompt_done for r in chosen)
        return chosen, max(1, min(left, MAX_PREFILL_ROWS, (self.n_batch - 1) // len(chosen)))

    def _decode(self, rows: dict[int, list[int]], logits: set[int]) -> dict[int, int]:
        """One ``llama_decode`` of ``rows`` (slot: tokens), in slot order.

        The slots in ``logits`` keep their last token's logits; returns its batch index.
        """
        pads = self._pads(rows)
        batch, n = self._batch, 0
        last_rows = {}
        for seq in sorted([*rows, *pads]):
            start = len(self._cached[seq])
            tokens = rows.get(seq, [0])  # a pad's token is any token
            for i, token in enumerate(tokens):
                last = i == len(tokens) - 1 and seq in logits
                n = self._add(batch, n, token, start + i, seq, last)
            if seq in logits:
                last_rows[seq] = n - 1
        batch.n_tokens = n
        status = llama_cpp.llama_decode(self.ctx.ctx, batch)
        self._copy_sources.clear()  # the decode made the pending copies first
        for seq in pads:  # drop what the pads wrote, success or not
            llama_cpp.llama_memory_seq_rm(self._memory, seq, len(self._cached[seq]), -1)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        for slot, tokens in rows.items():
            self._cached[slot].extend(tokens)
        return last_rows

    def _pads(self, rows: dict[int, list[int]]) -> list[int]:
        """Idle sequences that decode one throwaway token beside ``rows`` (dropped after).

        llama.cpp cuts a batch into micro-batches of consecutive sequence ids, each one more
        pass over the weights: a short gap next to a sequence decoding one token is filled,
        one row being cheaper than a pass (not between two prompt chunks: a one-token pad would
        cut them, llama.cpp's equal split). And a one-token sequence alone in its micro-batch
        gets company once its cache spans more than 256 cells: there llama.cpp attends for one
        token with a split-KV kernel that rounds differently, so it would decode other tokens
        alone than among neighbours.
        """
        single = {slot for slot, tokens in rows.items() if len(tokens) == 1}
        slots = sorted(rows)
        pads = [
            pad
            for before, after in zip(slots, slots[1:], strict=False)
            if after - before <= _GAP_FILL + 1 and (before in single or after in single)
            for pad in range(before + 1, after)
        ]
        busy = set(slots) | set(pads)
        for slot in sorted(single):
            alone = slot - 1 not in busy and slot + 1 not in busy
            if alone and len(self._cached[slot]) >= _SPLIT_KV_FROM:
                pads.append(slot + 1)  # always a sequence: the spare one follows the last slot
                busy.add(slot + 1)
        return pads

    def _sample_all(self, runnings: list[_Running], last_rows: dict[int, int]) -> None:
        finished = set()
        for running in runnings:
            if self._sample(running, last_rows[running.slot]):
                finished.add(running.slot)
        if finished:
            self._running = [r for r in self._running if r.slot not in finished]

    @staticmethod
    def _add(batch: Any, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
        batch.token[n] = token
        batch.pos[n] = pos
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = logits
        return n + 1

    def _sample(self, running: _Running, batch_index: int) -> bool:
        """Sample the next token of ``running``; True when the sequence is finished."""
        job = running.job
        if job.cancelled.is_set():
            self._release(running)
            return True
        token = running.sampler.sample(self.ctx, batch_index, self._candidates)
        if token is None:  # the grammar admits no token: what was made is the answer
            self._finish(running, "stop")
            return True
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
        # Bytes still held by the decoder are a character cut off by the token budget (its
        # first bytes only): dropped, never written to a dataset as U+FFFD.
        tail = running.text[running.emitted :] if reason != "error" else error
        running.job.emit(tail, reason, running.n_generated)
        self._release(running, keep_cache=reason != "error")

    def _release(self, running: _Running, *, keep_cache: bool = True) -> None:
        if not (keep_cache and self.reuse_prefix):
            self._truncate(running.slot, 0)
        running.sampler.close()
        bisect.insort(self._free_slots, running.slot)


def _open_store(
    config: PrefixStoreConfig | None, model_path: str, n_streams: int
) -> PrefixStore | None:
    """The store for these weights, this llama.cpp build and this many streams (a state is
    valid for no other: llama.cpp refuses one written with another stream count), in a
    directory of its own under ``config``'s."""
    if config is None:
        return None
    weights = Path(model_path).resolve()
    stat = weights.stat()
    identity = f"{weights}:{stat.st_size}:{stat.st_mtime_ns}:{llama_cpp.__version__}:{n_streams}"

    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return PrefixStore(PrefixStoreConfig(config.directory / digest, config.max_bytes))


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _drop_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs every tensor and buffer at load; TextNLP keeps stderr for its own."""


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _print_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    sys.stderr.write(text.decode("utf-8", "replace"))


def set_llama_logs(show: bool) -> None:
    """llama.cpp's own logs on stderr (``engine.llama_logs``, for debugging a load) or dropped.
    The callback is process-wide: the last engine loaded decides."""
    llama_cpp.llama_log_set(_print_log if show else _drop_log, ctypes.c_void_p(0))


class _Candidates:
    """The whole vocabulary's token data, where a pick the grammar refused is sampled again, and
    the grammar masks met so far, the most recently used last (engine thread only)."""

    def __init__(self, n_vocab: int) -> None:
        self.n_vocab = n_vocab
        self.array = internals.LlamaTokenDataArray(n_vocab=n_vocab)
        self.masks: OrderedDict[tuple[str, tuple[int, ...]], np.ndarray[Any, Any]] = OrderedDict()

    def load(self, ctx: internals.LlamaContext, index: int) -> internals.LlamaTokenDataArray:
        """The array holding the logits of batch row ``index``."""
        row = llama_cpp.llama_get_logits_ith(ctx.ctx, index)
        self.array.copy_logits(np.ctypeslib.as_array(row, shape=(self.n_vocab,)))
        self.array.candidates.selected = -1
        return self.array

    def mask(self, key: tuple[str, tuple[int, ...]]) -> np.ndarray[Any, Any] | None:
        mask = self.masks.get(key)
        if mask is not None:
            self.masks.move_to_end(key)
        return mask

    def remember(self, key: tuple[str, tuple[int, ...]], mask: np.ndarray[Any, Any]) -> None:
        self.masks[key] = mask
        if len(self.masks) > GRAMMAR_MASKS:
            self.masks.popitem(last=False)


class _Sampling:
    """A sequence's sampler chain, and its grammar kept the way llama.cpp's own tools keep
    one (``common_sampler``): the chain's pick is checked alone, and only a pick the grammar
    refuses has the whole vocabulary masked and sampled again. Masking every token first (the
    grammar first in the chain, as llama-cpp-python does) cost about 5 ms a token on SmolLM2's
    49k vocabulary, a tenth of a recipe run with a judge.

    What a grammar admits next depends only on the tokens it has accepted, so a mask is kept
    per (grammar, accepted tokens) and applied again with numpy: a judge's refused picks come
    where its answers begin, alike in every request (measured on the bench recipe's judge:
    about 7 ms a refused pick with llama.cpp's grammar pass over the vocabulary)."""

    def __init__(self, job: SequenceJob, vocab: Any) -> None:
        self.vocab = vocab
        self.grammar: Any = None
        self.grammar_text = job.grammar or ""
        self.accepted: list[int] = []
        if job.grammar is not None:
            self.grammar = llama_cpp.llama_sampler_init_grammar(
                vocab, job.grammar.encode(), b"root"
            )
            if not self.grammar:
                raise ValueError("the grammar does not parse")
        self.chain = _chain(job)

    def sample(
        self, ctx: internals.LlamaContext, index: int, candidates: _Candidates
    ) -> int | None:
        """The next token from the logits of batch row ``index`` (None: the grammar admits
        none)."""
        token: int = self.chain.sample(ctx, index)
        if self.grammar is None:
            return token
        if not self._admits(token):
            array = candidates.load(ctx, index)
            if not self._mask(array, candidates):
                return None
            llama_cpp.llama_sampler_apply(self.chain.sampler, ctypes.byref(array.candidates))
            token = int(array.candidates.data[array.candidates.selected].id)
        if not llama_cpp.llama_vocab_is_eog(self.vocab, token):  # an end needs no state after
            llama_cpp.llama_sampler_accept(self.grammar, token)
            self.accepted.append(token)
        return token

    def _mask(self, array: internals.LlamaTokenDataArray, candidates: _Candidates) -> bool:
        """Set the logits of the tokens the grammar refuses to -inf; False when it admits none."""
        logits = array.candidates_data.logit
        key = (self.grammar_text, tuple(self.accepted))
        mask = candidates.mask(key)
        if mask is not None:
            logits[~mask] = -np.inf
        else:
            every_one_finite = bool(np.isfinite(logits).all())
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(array.candidates))
            mask = np.isfinite(logits)
            if every_one_finite:  # else a refused token and a -inf logit look alike
                candidates.remember(key, mask)
        return bool(mask.any())

    def _admits(self, token: int) -> bool:
        cell = llama_cpp.llama_token_data(id=token, logit=0.0, p=0.0)
        one = llama_cpp.llama_token_data_array(
            data=ctypes.pointer(cell), size=1, selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(one))
        return math.isfinite(cell.logit)

    def close(self) -> None:
        self.chain.close()
        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None


def _chain(job: SequenceJob) -> internals.LlamaSampler:
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
