"""Recipes validate their values; schedules have the documented shapes."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.train import Recipe
from robustlens.train.augment import augment, random_crop, random_flip
from robustlens.train.schedule import learning_rate, training_eps


def test_recipe_rejects_bad_values_with_the_allowed_ones():
    with pytest.raises(ConfigError, match="one of 'natural', 'pgd', 'fgsm-rs', 'n-fgsm'"):
        Recipe(method="madry")
    with pytest.raises(ConfigError, match="a budget > 0 for method 'pgd'"):
        Recipe(method="pgd", eps=0.0)
    with pytest.raises(ConfigError, match="whole number"):
        Recipe(epochs=0)
    with pytest.raises(ConfigError, match="unknown key"):
        Recipe.from_dict({"epochz": 3})


def test_recipe_defaults_follow_the_papers():
    pgd = Recipe(method="pgd", eps=0.1, steps=10)
    assert pgd.attack_step_size(0.1) == pytest.approx(0.025)  # 2.5·ε/steps (Madry et al.)
    fgsm = Recipe(method="fgsm-rs", eps=0.1)
    assert fgsm.attack_steps == 1
    assert fgsm.attack_step_size(0.1) == pytest.approx(0.125)  # 1.25·ε (Wong et al.)
    assert Recipe.from_dict(pgd.to_dict()) == pgd
    assert pgd.digest() != dataclasses.replace(pgd, seed=1).digest()


def test_one_cycle_rises_then_falls_to_zero():
    recipe = Recipe(lr=0.2, schedule="one-cycle", warmup_fraction=0.25)
    lrs = [learning_rate(recipe, s, 100) for s in range(100)]
    peak = max(range(100), key=lambda s: lrs[s])
    assert peak in (24, 25)
    assert lrs[0] < 0.01 and lrs[-1] < 0.01
    assert max(lrs) == pytest.approx(0.2, rel=0.03)
    assert all(a <= b for a, b in itertools.pairwise(lrs[: peak + 1]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[peak:]))


def test_cosine_and_constant():
    cosine = Recipe(lr=1.0, schedule="cosine")
    assert learning_rate(cosine, 0, 1000) == pytest.approx(1.0, abs=1e-5)
    assert learning_rate(cosine, 499, 1000) == pytest.approx(0.5, abs=1e-2)
    assert learning_rate(Recipe(lr=0.3, schedule="constant"), 7, 10) == 0.3


def test_eps_warmup_is_linear():
    recipe = Recipe(method="pgd", eps=0.2, eps_warmup_epochs=2)
    assert training_eps(recipe, 0.0) == 0.0
    assert training_eps(recipe, 1.0) == pytest.approx(0.1)
    assert training_eps(recipe, 5.0) == pytest.approx(0.2)
    assert training_eps(Recipe(), 3.0) == 0.0


def test_random_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    gen = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, gen)
    gen = torch.Generator().manual_seed(0)
    dy = torch.randint(0, 5, (2,), generator=gen)
    dx = torch.randint(0, 5, (2,), generator=gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        expected = padded[i, :, dy[i] : dy[i] + 6, dx[i] : dx[i] + 6]
        assert torch.equal(out[i], expected)


def test_flip_mirrors_about_half_the_images():
    x = torch.rand(400, 1, 4, 4)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(dims=(3,))).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert bool((flipped | same).all())
    assert 150 < int(flipped.sum()) < 250
    assert torch.equal(augment(x, "none", torch.Generator()), x)
