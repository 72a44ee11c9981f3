"""Per-batch learning rate and training-ε schedules."""

from __future__ import annotations

import math

from robustlens.train.recipe import Recipe


def learning_rate(recipe: Recipe, step: int, total_steps: int) -> float:
    """Learning rate at optimiser step ``step`` (0-based) of ``total_steps``.

    ``one-cycle`` is the triangular schedule of Smith & Topin (2019) as used for fast
    adversarial training by Wong et al. (2020): 0 → lr linearly over ``warmup_fraction`` of
    training, then linearly back to 0. ``cosine`` anneals lr·(1 + cos(π t/T))/2.
    """
    t = (step + 0.5) / max(total_steps, 1)
    if recipe.schedule == "constant":
        return recipe.lr
    if recipe.schedule == "cosine":
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * t))
    peak = recipe.warmup_fraction
    if peak > 0 and t < peak:
        return recipe.lr * t / peak
    return recipe.lr * max(0.0, (1 - t) / (1 - peak))


def training_eps(recipe: Recipe, epoch_progress: float) -> float:
    """The training budget after ``epoch_progress`` epochs (linear warm-up from 0)."""
    if not recipe.adversarial:
        return 0.0
    if recipe.eps_warmup_epochs <= 0:
        return recipe.eps
    return recipe.eps * min(1.0, epoch_progress / recipe.eps_warmup_epochs)
