"""Seeded sampling of the transformers engine: exact draws, and a row's draw is its own."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import require


@pytest.fixture(autouse=True)
def _hf_extra() -> None:
    missing = [m for m in ("transformers", "torch") if importlib.util.find_spec(m) is None]
    require(not missing, f"the hf extra is not installed ({', '.join(missing)})")


def test_keys_differ_by_seed_and_step_and_are_never_the_greedy_key() -> None:
    from textnlp.backends.hf_sampling import GREEDY, noise_key

    keys = {noise_key(seed, step) for seed in range(50) for step in range(50)}
    assert len(keys) == 2500 and GREEDY not in keys
    assert all(0 < key < 2**31 for key in keys)
    assert noise_key(2**32 - 1, 4095) == noise_key(2**32 - 1, 4095)


def test_a_tokens_noise_does_not_depend_on_which_others_are_drawn() -> None:
    import torch

    from textnlp.backends.hf_sampling import gumbel_noise

    keys = torch.tensor([7, 123456789])
    vocab = torch.arange(1000).expand(2, 1000)
    subset = torch.tensor([[5, 999, 17], [0, 5, 640]])
    full = gumbel_noise(keys, vocab)
    assert torch.equal(gumbel_noise(keys, subset), full.gather(-1, subset))
    assert not torch.equal(full[0], full[1])


def test_noisy_argmax_draws_from_the_softmax() -> None:
    import torch

    from textnlp.backends.hf_sampling import add_noise, noise_key

    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    draws = 8000
    keys = torch.tensor([noise_key(seed, 0) for seed in range(draws)])
    picks = add_noise(logits.expand(draws, 4), keys, top_k=0).argmax(-1)
    frequencies = torch.bincount(picks, minlength=4).float() / draws
    assert torch.allclose(frequencies, logits.softmax(-1), atol=0.02), frequencies


def test_top_k_and_top_p_keep_the_smallest_set_with_the_mass() -> None:
    import torch

    from textnlp.backends.hf_sampling import filter_top_k_top_p

    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.5, 0.3, 0.15, 0.05]]))
    kept = filter_top_k_top_p(scores, torch.tensor([0.7, 1.0]), top_k=3).isfinite()
    assert kept.tolist() == [[True, True, False, False], [True, True, True, False]]


def test_the_static_sampler_gives_each_row_its_own_draw() -> None:
    import torch

    from textnlp.backends.hf_sampling import SeededSampler

    def sampler(seeds: list[int | None]) -> SeededSampler:
        return SeededSampler(
            seeds=seeds,
            temperatures=[0.0 if s is None else 1.0 for s in seeds],
            top_ps=[1.0] * len(seeds),
            banned=[[0]] + [[]] * (len(seeds) - 1),
            prompt_width=3,
            top_k=0,
        )

    torch.manual_seed(0)
    scores = torch.randn(3, 50)
    scores[0, 0] = 100.0  # row 0's favourite, which it bans
    prompt = torch.zeros(3, 5, dtype=torch.long)  # two tokens generated so far
    batch = sampler([11, None, 12])(prompt, scores.clone()).argmax(-1)
    alone = sampler([11])(prompt[:1], scores[:1].clone()).argmax(-1)
    assert batch[0] == alone[0] and batch[0] != 0  # banned token 0 never drawn
    assert batch[1] == scores[1].argmax()  # no seed, no temperature: greedy
