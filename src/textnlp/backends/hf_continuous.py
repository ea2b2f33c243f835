"""transformers' continuous batching behind asyncio, for the transformers backend.

transformers' ``ContinuousBatchingManager`` runs one background thread over a paged KV cache:
requests join and leave the running batch at every step, prompts are prefilled in chunks of
``max_batch_tokens``, and blocks of a shared prompt prefix are shared. Each request has its own
``max_new_tokens`` and end-of-sequence ids; its sampling is ours (``hf_sampling``: temperature,
top-p and a seed per request), because the manager's own sampler has one seed for everything.

Results reach the event loop through the manager's per-request handlers; a streamed request
gets every step's tokens, and a request whose consumer stops early (a stop string, a client
gone) is cancelled, which frees its KV blocks at the next step.

Imported only once a transformers model loads.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import torch
from transformers import GenerationConfig
from transformers.generation.configuration_utils import ContinuousBatchingConfig

from textnlp.backends.hf_sampling import continuous_processors

#: KV capacity on the CPU when not configured (tokens): SmolLM2-135M keeps 90 KiB per token in
#: float32, so this is 1.4 GiB; transformers would otherwise take most of the free RAM.
CPU_CACHE_TOKENS = 16384
#: Tokens per forward step on the CPU: the SDPA path's mask grows with its square.
CPU_BATCH_TOKENS = 512
#: The share of free GPU memory the KV cache takes when ``cache_tokens`` is not configured.
GPU_MEMORY_SHARE = 0.5
#: transformers' cache page, in tokens (its default).
PAGE_TOKENS = 256


class ContinuousEngine:
    """One model's continuous-batching manager: ``start`` it, submit token lists, ``close``."""

    def __init__(
        self,
        model: Any,
        *,
        eos: Sequence[int],
        pad: int | None,
        max_requests: int,
        cache_tokens: int | None,
        max_batch_tokens: int | None,
        top_k: int,
        warmup: bool | None = None,
    ) -> None:
        self._model = model
        self._warmup = warmup  # None: on a GPU only
        self._eos = list(eos)
        self._pad = pad
        self._max_requests = max_requests
        self._cache_tokens = cache_tokens
        self._max_batch_tokens = max_batch_tokens
        self._top_k = top_k
        self._manager: Any = None
        self._ids = itertools.count()

    def start(self) -> None:
        """Build the manager and start its thread (blocking: run it off the event loop)."""
        on_cpu = self._model.device.type == "cpu"
        cache_tokens = self._cache_tokens or (CPU_CACHE_TOKENS if on_cpu else None)
        batch_tokens = self._max_batch_tokens or (CPU_BATCH_TOKENS if on_cpu else None)
        config = ContinuousBatchingConfig(
            num_blocks=math.ceil(cache_tokens / PAGE_TOKENS) if cache_tokens else None,
            # Sized from free GPU memory: half of it, leaving room to the process's other users.
            max_memory_percent=None if cache_tokens else GPU_MEMORY_SHARE,
            max_batch_tokens=batch_tokens,
            max_requests_per_batch=self._max_requests,
            # The sampler draws from each request's seed; this only fixes the manager's own.
            seed=0,
        )
        generation = GenerationConfig(
            do_sample=False,  # hf_sampling's noise makes argmax a draw (none: greedy)
            eos_token_id=self._eos or None,
            pad_token_id=self._pad,
        )
        # no_grad, not inference_mode: tensors made here (warm-up's static buffers) are updated in
        # place by the manager's thread, which runs under no_grad, and an inference tensor refuses
        # that (it failed so on a GPU, where the warm-up runs).
        with torch.no_grad():
            manager = self._model.init_continuous_batching(
                generation_config=generation, continuous_batching_config=config
            )
            manager.logit_processor = continuous_processors(self._eos, self._top_k)
            if self._warmup if self._warmup is not None else not on_cpu:
                manager.warmup()  # captures CUDA graphs where transformers uses them
            manager.start()
        self._manager = manager

    def close(self) -> None:
        manager, self._manager = self._manager, None
        if manager is not None:
            # Requests still running fail (their callers get an error) rather than hold the close.
            manager.stop(block=True, timeout=30, hard_stop=True)
            manager.destroy()

    @property
    def running(self) -> bool:
        return self._manager is not None and bool(self._manager.is_running())

    async def tokens(
        self,
        prompt: list[int],
        *,
        max_new_tokens: int,
        sampling: dict[str, Any],
        ignore_eos: bool,
        stream: bool,
    ) -> AsyncGenerator[list[int]]:
        """The request's generated tokens so far, each time they grow (once unless ``stream``);
        the last yield is the whole answer, end-of-sequence included. Leaving early cancels it.
        """
        manager = self._manager
        if manager is None or not manager.is_running():
            raise RuntimeError("the continuous-batching loop is not running")
        request_id = f"textnlp-{next(self._ids)}"
        outputs: asyncio.Queue[Any] = asyncio.Queue()
        # Registered before the request exists, so no output can miss it.
        manager.register_result_handler(request_id, outputs.put_nowait)
        finished = False
        try:
            added = manager.add_request(
                prompt,
                request_id=request_id,
                max_new_tokens=max_new_tokens,
                streaming=stream,
                eos_token_id=-1 if ignore_eos else None,  # -1: no end-of-sequence id
                **sampling,
            )
            if added is None:
                raise RuntimeError("the continuous-batching loop refused the request")
            while not finished:
                output = await outputs.get()
                if output.error is not None:
                    finished = True
                    raise RuntimeError(output.error)
                finished = bool(output.is_finished())
                yield list(output.generated_tokens)
        finally:
            if not finished:
                manager.cancel_request(request_id)
                # A cancelled request sends no last output, so its handler would stay.
                with manager.output_router._lock:
                    manager.output_router.result_handlers.pop(request_id, None)


def sampling_kwargs(
    *, temperature: float, top_p: float, seed: int | None, ignore_eos: bool
) -> dict[str, Any]:
    """A request's ``logit_processor_kwargs`` for ``hf_sampling``'s continuous processors."""
    kwargs: dict[str, Any] = {"ban_eos": 1} if ignore_eos else {}
    if temperature > 0 and seed is not None:
        kwargs.update(temperature=float(temperature), top_p=float(top_p), seed=int(seed))
    return kwargs
