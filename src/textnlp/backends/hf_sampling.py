"""Per-request seeded sampling for the transformers engine, in both batching modes.

transformers samples a whole batch from one random generator (``generate``'s ``do_sample``, and
the continuous-batching manager's one seed per manager), so a request's tokens would depend on
its batch neighbours. Here every row draws with the Gumbel-max trick instead: the next token is
``argmax(scores / T + g)`` after top-k/top-p filtering, where ``g`` is Gumbel noise computed by
an integer hash of (request seed, token index, vocabulary index). That is an exact sample of the
filtered softmax, and its randomness belongs to the request alone. The model then decodes
"greedily" (``do_sample=False``): a row without a seed gets no noise, which is greedy decoding.

What stays batch-dependent is float rounding: a batch of another shape runs other matrix
kernels, whose last bits can flip a near-tie between two tokens.

Imported only once a transformers model loads (it subclasses transformers' processors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation.continuous_batching.cb_logits_processors import (
    ContinuousBatchingLogitsProcessor,
    ContinuousBatchingLogitsProcessorList,
)

_MASK32 = 0xFFFFFFFF
#: The greedy rows' key: no noise.
GREEDY = 0


def noise_key(seed: int, step: int) -> int:
    """A 31-bit non-zero key for token ``step`` of a request seeded with ``seed`` (splitmix64)."""
    x = (((seed & _MASK32) << 32) | (step & _MASK32)) + 0x9E3779B97F4A7C15
    x &= 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    return (x >> 33) or 1


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """``h * c mod 2**32`` on int64 tensors without overflowing them (h, c < 2**32)."""
    low = h * (c & 0xFFFF)
    high = ((h * (c >> 16)) & 0xFFFF) << 16
    return (low + high) & _MASK32


def gumbel_noise(keys: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Gumbel(0, 1) noise for ``tokens`` ([rows, n] ids): entry (i, j) depends on ``keys[i]``
    and ``tokens[i, j]`` only, so any subset of a row's vocabulary draws the same values."""
    h = _mul32(keys.to(torch.int64).unsqueeze(-1), 0x9E3779B1) ^ _mul32(tokens, 0x85EBCA77)
    h = h ^ (h >> 16)  # murmur3's finaliser
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    h = h ^ (h >> 16)
    uniform = ((h >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))
    return -torch.log(-torch.log(uniform))


def filter_top_k_top_p(scores: torch.Tensor, top_p: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep each row's ``top_k`` best tokens (0: all), then its smallest set of mass ``top_p``."""
    vocab = scores.size(-1)
    k = vocab if top_k <= 0 else min(top_k, vocab)
    values, indices = scores.topk(k, dim=-1)
    probs = values.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    values = values.masked_fill(mass_before >= top_p.unsqueeze(-1), float("-inf"))
    return torch.full_like(scores, float("-inf")).scatter(-1, indices, values)


def add_noise(scores: torch.Tensor, keys: torch.Tensor, top_k: int) -> torch.Tensor:
    """``scores`` with each keyed row's Gumbel noise added (key GREEDY: unchanged).

    After top-k filtering a row has at most ``top_k`` finite scores, so only those draw noise
    (hashing the whole vocabulary every step cost as much as a tenth of a CPU decode step).
    """
    vocab = scores.size(-1)
    if 0 < top_k < vocab:
        values, tokens = scores.topk(top_k, dim=-1)
    else:
        values = scores
        tokens = torch.arange(vocab, device=scores.device).expand(scores.size(0), vocab)
    noisy = values + gumbel_noise(keys, tokens)
    values = torch.where((keys != GREEDY).unsqueeze(-1), noisy, values)
    return torch.full_like(scores, float("-inf")).scatter(-1, tokens, values)


class SeededSampler(LogitsProcessor):  # type: ignore[misc]  # transformers is untyped here
    """The static mode's processor: one ``generate`` call, a seed, temperature and top-p per row."""

    def __init__(
        self,
        *,
        seeds: Sequence[int | None],
        temperatures: Sequence[float],
        top_ps: Sequence[float],
        banned: Sequence[Sequence[int]],
        prompt_width: int,
        top_k: int,
    ) -> None:
        self.seeds = list(seeds)
        self.temperatures = torch.tensor([t if t > 0 else 1.0 for t in temperatures])
        self.top_p = torch.tensor(list(top_ps), dtype=torch.float32)
        self.banned = [list(b) for b in banned]
        self.prompt_width = prompt_width
        self.top_k = top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_width
        keys = [GREEDY if s is None else noise_key(s, step) for s in self.seeds]
        scores = scores / self.temperatures.to(scores.device).unsqueeze(-1)
        for row, tokens in enumerate(self.banned):
            if tokens:
                scores[row, tokens] = float("-inf")
        scores = filter_top_k_top_p(scores, self.top_p.to(scores.device), self.top_k)
        return add_noise(scores, torch.tensor(keys, device=scores.device), self.top_k)


# The continuous mode's processors. Each gets one int32 per row (floats travel bit-cast), filled
# from the request's ``logit_processor_kwargs`` when its batch is prepared; their calls are pure
# tensor work, so they can run inside captured CUDA graphs.


def _floats(requests: list[Any], name: str, default: float) -> torch.Tensor:
    """Each request's float kwarg ``name``, bit-cast to int32 for the argument storage."""
    values = [r.state.logit_processor_kwargs.get(name, default) for r in requests]
    return torch.tensor(values, dtype=torch.float32).view(torch.int32)


class _Temperature(ContinuousBatchingLogitsProcessor):  # type: ignore[misc]
    supported_kwargs = {"temperature": float}
    ignored_kwargs = ()

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        int32_tensor.copy_(torch.ones_like(int32_tensor, dtype=torch.float32).view(torch.int32))

    def prepare_tensor_args(self, requests_with_new_token: list[Any]) -> torch.Tensor:
        return _floats(requests_with_new_token, "temperature", 1.0)

    def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
        temperature = tensor_arg[: scores.size(0)].view(torch.float32)
        return scores / temperature.unsqueeze(-1)


class _BanEos(ContinuousBatchingLogitsProcessor):  # type: ignore[misc]
    """``ignore_eos`` rows never draw end-of-sequence (as ``min_new_tokens`` does statically)."""

    supported_kwargs = {"ban_eos": int}
    ignored_kwargs = ()

    def __init__(self, eos: Sequence[int]) -> None:
        self.eos = list(eos)

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        int32_tensor.fill_(0)

    def prepare_tensor_args(self, requests_with_new_token: list[Any]) -> torch.Tensor:
        flags = [r.state.logit_processor_kwargs.get("ban_eos", 0) for r in requests_with_new_token]
        return torch.tensor(flags, dtype=torch.int32)

    def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
        banned = (tensor_arg[: scores.size(0)] != 0).unsqueeze(-1)
        # A mask made on the device (no host list copied in): the call may be graph-captured.
        columns = torch.arange(scores.size(-1), device=scores.device)
        is_eos = torch.zeros_like(columns, dtype=torch.bool)
        for token in self.eos:
            is_eos = is_eos | (columns == token)
        return scores.masked_fill(banned & is_eos, float("-inf"))


class _TopKTopP(ContinuousBatchingLogitsProcessor):  # type: ignore[misc]
    supported_kwargs = {"top_p": float}
    ignored_kwargs = ()

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        int32_tensor.copy_(torch.ones_like(int32_tensor, dtype=torch.float32).view(torch.int32))

    def prepare_tensor_args(self, requests_with_new_token: list[Any]) -> torch.Tensor:
        return _floats(requests_with_new_token, "top_p", 1.0)

    def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
        top_p = tensor_arg[: scores.size(0)].view(torch.float32)
        return filter_top_k_top_p(scores, top_p, self.top_k)


class _Noise(ContinuousBatchingLogitsProcessor):  # type: ignore[misc]
    supported_kwargs = {"seed": int}
    ignored_kwargs = ()

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        int32_tensor.fill_(GREEDY)

    def prepare_tensor_args(self, requests_with_new_token: list[Any]) -> torch.Tensor:
        keys = []
        for future in requests_with_new_token:
            state = future.state
            seed = state.logit_processor_kwargs.get("seed")
            # The batch was prepared, so position_offset counts the token being drawn; the
            # prompt's own length survives a requeue in _true_initial_tokens.
            prompt = getattr(state, "_true_initial_tokens", 0) or len(state.initial_tokens)
            step = state.position_offset - prompt
            keys.append(GREEDY if seed is None else noise_key(seed, step))
        return torch.tensor(keys, dtype=torch.int32)

    def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
        return add_noise(scores, tensor_arg[: scores.size(0)], self.top_k)


def continuous_processors(eos: Sequence[int], top_k: int) -> Any:
    """The processors a continuous-batching manager runs in place of its own sampling."""
    processors = [_Temperature(), _BanEos(eos), _TopKTopP(top_k), _Noise(top_k)]
    chain = ContinuousBatchingLogitsProcessorList(LogitsProcessorList(processors))
    # One int32 row of arguments per processor: transformers counts only the ones it converts.
    chain.tensors_required = len(processors)
    return chain


def static_processors(sampler: SeededSampler) -> Any:
    return LogitsProcessorList([sampler])
