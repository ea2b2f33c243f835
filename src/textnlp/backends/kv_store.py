"""Prompts' KV states on disk, so that a later run's prompts start where an earlier run's ended.

A recipe re-run after an edit asks again for prompts that begin as before: a judge's prompt
opens with the record's review, and the edited rubric comes after it. The llama.cpp engine saves
the KV state of a prompt it computed (``llama_state_seq_get_data``) and, for a new prompt, loads
the state that shares the longest prefix with it when that beats what its own streams hold. A
state holds about 23 KB a token for SmolLM2-135M, so only prompts mostly new to the store are
saved (see ``worth_saving``), and the least recently used states go first past ``max_bytes``.

Entries are found by chained hashes of ``BLOCK``-token blocks, so a lookup costs one hash per
block of the prompt. A state is valid only for the weights, the llama.cpp build and the
engine's stream count that wrote it: the engine opens a directory of its own for each. Files
are written by a thread of the store (the decode loop only hands the bytes over) and renamed
into place, so a reader never sees half a state; a state that fails to load is dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

#: Tokens per hashed block: the shortest shared prefix the store can find.
BLOCK = 32


@dataclass(frozen=True)
class PrefixStoreConfig:
    """Where the states of one engine's weights go, and how many bytes they may take."""

    directory: Path
    max_bytes: int


@dataclass
class _Entry:
    tokens: list[int]
    size: int
    used: float


def block_hashes(tokens: list[int]) -> list[str]:
    """The chained hash of each full block: the i-th names the first ``(i + 1) * BLOCK`` tokens."""
    hashes, chain = [], b""
    for start in range(0, len(tokens) - BLOCK + 1, BLOCK):
        block = array("i", tokens[start : start + BLOCK]).tobytes()
        chain = hashlib.blake2b(chain + block, digest_size=16).digest()
        hashes.append(chain.hex())
    return hashes


class PrefixStore:
    def __init__(self, config: PrefixStoreConfig) -> None:
        self.directory = config.directory
        self.max_bytes = config.max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, _Entry] = {}
        #: Block hash -> the entry last saved with that prefix.
        self._by_block: dict[str, str] = {}
        #: States handed over but not yet on disk (readable meanwhile).
        self._pending: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._writes: queue.Queue[tuple[str, list[int], bytes] | None] = queue.Queue()
        for path in self.directory.glob("*.tokens"):
            self._index(path)
        self._writer = threading.Thread(target=self._write_loop, name="kv-store", daemon=True)
        self._writer.start()

    def _index(self, tokens_path: Path) -> None:
        state = tokens_path.with_suffix(".kv")
        try:
            tokens = json.loads(tokens_path.read_text())
            stat = state.stat()
        except (OSError, ValueError):
            return  # half of a pair (a crash between the renames): not an entry
        self._add(tokens_path.stem, tokens, stat.st_size, stat.st_mtime)

    def _add(self, name: str, tokens: list[int], size: int, used: float) -> None:
        self._entries[name] = _Entry(tokens, size, used)
        for digest in block_hashes(tokens):
            self._by_block[digest] = name

    # -- lookups (the decode loop) ---------------------------------------------------------------
    def match(self, prompt: list[int]) -> tuple[str, int] | None:
        """The entry sharing the longest prefix with ``prompt``, and that prefix's length."""
        with self._lock:
            best: str | None = None
            for digest in block_hashes(prompt):  # every depth: an eviction may leave gaps
                best = self._by_block.get(digest, best)
            if best is None:
                return None
            shared = common_prefix(prompt, self._entries[best].tokens)
            return best, shared

    def worth_saving(self, prompt: list[int], min_tokens: int) -> bool:
        """Whether ``prompt`` is mostly new to the store: at least ``min_tokens`` and half of
        it past what the store holds (a state is saved whole, shared prefix included)."""
        found = self.match(prompt)
        new = len(prompt) - (found[1] if found else 0)
        return new >= min_tokens and 2 * new >= len(prompt)

    def read(self, name: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return None
            entry.used = time.time()
            pending = self._pending.get(name)
        if pending is not None:
            return pending
        path = self.directory / f"{name}.kv"
        try:
            data = path.read_bytes()
            os.utime(path)  # least recently used is read from the files' times on reopening
        except OSError:
            self.drop(name)
            return None
        return data

    def save(self, prompt: list[int], state: bytes) -> None:
        """Keep ``state`` (the KV of exactly ``prompt``); written by the store's thread."""
        name = hashlib.blake2b(array("i", prompt).tobytes(), digest_size=16).hexdigest()
        with self._lock:
            if name in self._entries:
                return
            self._add(name, list(prompt), len(state), time.time())
            self._pending[name] = state
            evicted = self._evict()
        self._writes.put((name, list(prompt), state))
        for old in evicted:
            self._remove_files(old)

    def drop(self, name: str) -> None:
        """Forget an entry (its state did not load)."""
        with self._lock:
            self._forget(name)
        self._remove_files(name)

    def close(self) -> None:
        """Finish the writes handed over."""
        self._writes.put(None)
        self._writer.join()

    # -- inside the lock -------------------------------------------------------------------------
    def _evict(self) -> list[str]:
        total = sum(entry.size for entry in self._entries.values())
        evicted = []
        for name in sorted(self._entries, key=lambda n: self._entries[n].used):
            if total <= self.max_bytes:
                break
            total -= self._entries[name].size
            self._forget(name)
            evicted.append(name)
        return evicted

    def _forget(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        self._pending.pop(name, None)
        if entry is None:
            return
        for digest in block_hashes(entry.tokens):
            if self._by_block.get(digest) == name:
                del self._by_block[digest]

    # -- files (the store's thread) --------------------------------------------------------------
    def _write_loop(self) -> None:
        while (item := self._writes.get()) is not None:
            name, tokens, state = item
            with self._lock:
                if name not in self._entries:
                    continue  # evicted before it was written
            try:
                _write_atomic(self.directory / f"{name}.kv", state)
                _write_atomic(self.directory / f"{name}.tokens", json.dumps(tokens).encode())
            except OSError:
                self.drop(name)  # a full disk loses the entry, never the run
                continue
            with self._lock:
                self._pending.pop(name, None)
                if name not in self._entries:  # evicted while being written
                    self._remove_files(name)

    def _remove_files(self, name: str) -> None:
        for suffix in (".tokens", ".kv"):
            with contextlib.suppress(OSError):
                (self.directory / f"{name}{suffix}").unlink()


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
