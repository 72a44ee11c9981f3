"""Learning-rate schedules at their edges, by hand: no warm-up, steps past the end, a single
step, and the constant schedule."""

from __future__ import annotations

import math

import pytest

from robustlens.train import Recipe
from robustlens.train.schedule import learning_rate, training_eps


def test_one_cycle_without_warmup_only_falls():
    recipe = Recipe(lr=0.4, schedule="one-cycle", warmup_fraction=0.0)
    # t = (s + 0.5)/10: lr·(1 − t)
    assert learning_rate(recipe, 0, 10) == pytest.approx(0.4 * 0.95)
    assert learning_rate(recipe, 9, 10) == pytest.approx(0.4 * 0.05)


def test_steps_past_the_end_get_no_learning_rate():
    recipe = Recipe(lr=0.4, schedule="one-cycle", warmup_fraction=0.5)
    assert learning_rate(recipe, 10, 10) == 0.0
    assert learning_rate(recipe, 30, 10) == 0.0


def test_no_steps_at_all_counts_as_one():
    # total 0 is read as 1: t = 0.5, the peak of a warm-up of 0.5
    recipe = Recipe(lr=0.4, schedule="one-cycle", warmup_fraction=0.5)
    assert learning_rate(recipe, 0, 0) == pytest.approx(0.4)
    cosine = Recipe(lr=0.4, schedule="cosine")
    assert learning_rate(cosine, 0, 0) == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi / 2)))


def test_cosine_by_hand():
    recipe = Recipe(lr=1.0, schedule="cosine")
    for step in (0, 3, 7):
        t = (step + 0.5) / 8
        assert learning_rate(recipe, step, 8) == pytest.approx(0.5 * (1 + math.cos(math.pi * t)))


def test_constant_ignores_the_step():
    recipe = Recipe(lr=0.3, schedule="constant", warmup_fraction=0.5)
    assert [learning_rate(recipe, s, 4) for s in range(6)] == [0.3] * 6


def test_natural_training_has_no_budget_and_no_warmup_means_full_budget():
    assert training_eps(Recipe(eps=0.3), 0.5) == 0.0  # natural: ε is ignored
    assert training_eps(Recipe(method="pgd", eps=0.3), 0.0) == 0.3
    half = Recipe(method="pgd", eps=0.3, eps_warmup_epochs=2)
    assert training_eps(half, 2.0) == pytest.approx(0.3)
    assert training_eps(half, 1.0) == pytest.approx(0.15)
