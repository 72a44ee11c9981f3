"""Robustified images by representation inversion (Springer et al. 2021, §3.3, Table 4;
Ilyas et al. 2019).

For each image x with label y, start from a seed x₀ — by default another image of the same set
(a fixed random derangement, so x₀'s features are uncorrelated with y in expectation), or
uniform noise as in Garaev et al. — and minimise ‖rep(x_r) − rep(x)‖₂ over x_r in [0, 1] by
normalised (L2) gradient steps, with no bound on the distance from x₀. rep is the model's
penultimate representation. The PGD engine does the work through its custom-loss hook (a
targeted run whose "target" is rep(x)), so the steps, the box clipping and the batching are the
attacks' own; each image keeps its best iterate.

Table 4 sets 400 steps of 0.05 for CIFAR-10 (32 × 32 × 3) and 200 of 0.1 for ImageNet; other
resolutions get the CIFAR setting with the step moved like an L2 budget (× √(d / 3072)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from robustlens.attacks.pgd import PGD
from robustlens.attacks.spec import CIFAR10_DIM, scale_eps
from robustlens.attacks.threat import L2
from robustlens.errors import ConfigError

SEED_MODES = ("other-image", "noise")
CIFAR_STEPS, CIFAR_STEP_SIZE = 400, 0.05
IMAGENET_STEPS, IMAGENET_STEP_SIZE = 200, 0.1
IMAGENET_DIM = 3 * 224 * 224


def default_schedule(dim: int) -> tuple[int, float]:
    """Table 4's (steps, step size) for inputs of ``dim`` values."""
    if dim >= IMAGENET_DIM // 2:
        return IMAGENET_STEPS, scale_eps("l2", IMAGENET_STEP_SIZE, dim, IMAGENET_DIM)
    return CIFAR_STEPS, scale_eps("l2", CIFAR_STEP_SIZE, dim, CIFAR10_DIM)


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of 0…n−1 in which no index maps to itself (n ≥ 2)."""
    if n < 2:
        raise ConfigError("seeding from other images needs at least two images")
    perm = torch.randperm(n, generator=generator)
    for i in range(n):
        if perm[i] == i:
            j = (i + 1) % n
            perm[i], perm[j] = perm[j].clone(), perm[i].clone()
    return perm


def representations(model: nn.Module, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """rep(x): the model's penultimate representation, without gradients."""
    with torch.no_grad():
        return torch.cat(
            [model.features(images[i : i + batch]) for i in range(0, len(images), batch)]
        )


def representation_distance(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """‖rep(x) − target‖₂ per sample (the custom loss the engine descends)."""
    return (model.features(x) - target).flatten(1).norm(dim=1)


@dataclass
class InversionResult:
    """Robustified images and how close their representations came."""

    images: torch.Tensor
    seeds: torch.Tensor
    """Index of each image's seed image in the input (−1 for noise seeds)."""
    start_distance: np.ndarray
    """‖rep(x₀) − rep(x)‖ / ‖rep(x)‖ per image, before any step."""
    distance: np.ndarray
    """‖rep(x_r) − rep(x)‖ / ‖rep(x)‖ per image, at the end."""


def robustify(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int | None = None,
    step_size: float | None = None,
    seed_mode: str = "other-image",
    seed: int = 0,
    batch_size: int = 250,
) -> InversionResult:
    """Invert ``model``'s representation of every image from a seed (see the module notes)."""
    if seed_mode not in SEED_MODES:
        raise ConfigError(f"unknown seed mode {seed_mode!r}", fix=f"use {', '.join(SEED_MODES)}")
    dim = int(np.prod(images.shape[1:]))
    default_steps, default_step = default_schedule(dim)
    steps = default_steps if steps is None else int(steps)
    step_size = default_step if step_size is None else float(step_size)
    if steps < 1 or step_size <= 0:
        raise ConfigError(
            f"inversion needs steps ≥ 1 and a step size > 0, got {steps}, {step_size}"
        )
    gen = torch.Generator().manual_seed(seed)
    if seed_mode == "other-image":
        order = derangement(len(images), gen)
        starts, seeds = images[order.to(images.device)].clone(), order
    else:
        starts = torch.rand(images.shape, generator=gen).to(images)
        seeds = torch.full((len(images),), -1, dtype=torch.long)
    target = representations(model, images)
    # the box's diameter: a ball no iterate inside [0, 1] can leave, i.e. no bound (Table 4: ∞)
    engine = PGD(
        model,
        L2(math.sqrt(dim)),
        steps=steps,
        step_size=step_size,
        random_start=False,
        targeted=True,
        loss=representation_distance,
        early_stop=False,
        track_best=True,
        seed=seed,
    )
    result = engine.run(starts, labels, targets=target, batch_size=batch_size)
    scale = target.flatten(1).norm(dim=1).clamp_min(1e-12)
    start = (representations(model, starts) - target).flatten(1).norm(dim=1) / scale
    end = (representations(model, result.adversarial) - target).flatten(1).norm(dim=1) / scale
    return InversionResult(
        images=result.adversarial.detach(),
        seeds=seeds.cpu(),
        start_distance=start.double().cpu().numpy(),
        distance=end.double().cpu().numpy(),
    )
