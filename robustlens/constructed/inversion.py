"""Robustified images by representation inversion (Springer et al. 2021, §3.3, Table 4;
Ilyas et al. 2019).

For each image x with label y, start from a seed x₀ — by default another image of the same set
(a fixed random derangement, so x₀'s features are uncorrelated with y in expectation), or
uniform noise as in Garaev et al. — and minimise ‖rep(x_r) − rep(x)‖₂ over x_r in [0, 1] by
normalised (L2) gradient steps, with no bound on the distance from x₀. rep is the model's
penultimate representation. The PGD engine does the work through its custom-loss hook (a
targeted run whose "target" is rep(x)), so the steps, the box clipping and the batching are the
attacks' own; each image keeps its best iterate.

Table 4 sets 400 steps of 0.05 for CIFAR-10 (3 × 32 × 32 = 3072 values) and 200 of 0.1 for
ImageNet, which in the paper is ImageNet-9 downsampled to 64 × 64 (§3.4, App. A.1: 3 × 64 × 64 =
12288 values). The two rows agree on moving the step like an L2 budget (0.05 · √(12288 / 3072)
= 0.1) while halving the step count. Other resolutions get the nearer row with the step moved
the same way (× √(d / d_row)): the CIFAR row below 6144 values, the ImageNet-9 row from there.

Seeds are assigned for the whole set at once (:func:`seed_assignment`, :func:`seed_images`):
image i's seed depends only on the seed, i and the set, never on how the set is cut into
chunks, so a chunked build (:func:`robustlens.constructed.build_robustified`) equals one
:func:`robustify` call on the whole set.
"""

from __future__ import annotations

import hashlib
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
IMAGENET9_STEPS, IMAGENET9_STEP_SIZE = 200, 0.1
IMAGENET9_DIM = 3 * 64 * 64
"""ImageNet-9 at 64 × 64 (Springer et al. §3.4, App. A.1), the resolution of Table 4's row."""


def default_schedule(dim: int) -> tuple[int, float]:
    """Table 4's (steps, step size) for inputs of ``dim`` values (see the module notes)."""
    if dim >= IMAGENET9_DIM // 2:
        return IMAGENET9_STEPS, scale_eps("l2", IMAGENET9_STEP_SIZE, dim, IMAGENET9_DIM)
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


def seed_assignment(n: int, seed_mode: str, seed: int) -> torch.Tensor:
    """Index of each of ``n`` images' seed image — a derangement drawn from ``seed`` — or −1
    for every image when seeds are noise."""
    if seed_mode not in SEED_MODES:
        raise ConfigError(f"unknown seed mode {seed_mode!r}", fix=f"use {', '.join(SEED_MODES)}")
    if seed_mode == "noise":
        return torch.full((n,), -1, dtype=torch.long)
    return derangement(n, torch.Generator().manual_seed(seed))


def _noise_seed(seed: int, index: int) -> int:
    digest = hashlib.sha256(f"robustify-noise|{seed}|{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_images(
    images: torch.Tensor, assignment: torch.Tensor, start: int, stop: int, seed: int
) -> torch.Tensor:
    """x₀ for images ``start``…``stop − 1`` of ``images`` (the whole set): the assigned image,
    or for −1 uniform noise in [0, 1] drawn from (``seed``, image index) alone."""
    part = assignment[start:stop]
    out = torch.empty((stop - start, *images.shape[1:]), dtype=images.dtype)
    noise = (part < 0).nonzero().flatten().tolist()
    for i in noise:
        gen = torch.Generator().manual_seed(_noise_seed(seed, start + i))
        out[i] = torch.rand(images.shape[1:], generator=gen)
    chosen = (part >= 0).nonzero().flatten()
    if len(chosen):
        out[chosen] = images[part[chosen].to(images.device)].to(out)
    return out.to(images.device)


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
    assignment = seed_assignment(len(images), seed_mode, seed)
    starts = seed_images(images, assignment, 0, len(images), seed)
    return invert(
        model, images, labels, starts, assignment,
        steps=steps, step_size=step_size, seed=seed, batch_size=batch_size,
    )  # fmt: skip


def invert(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    starts: torch.Tensor,
    seeds: torch.Tensor,
    *,
    steps: int | None = None,
    step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 250,
) -> InversionResult:
    """Invert ``model``'s representation of ``images`` from the seeds ``starts`` (whose indices
    ``seeds`` are recorded), by Table 4's schedule unless ``steps`` / ``step_size`` are given."""
    if starts.shape != images.shape or seeds.shape != (len(images),):
        raise ConfigError("inversion needs one seed image and one seed index per image")
    dim = int(np.prod(images.shape[1:]))
    default_steps, default_step = default_schedule(dim)
    steps = default_steps if steps is None else int(steps)
    step_size = default_step if step_size is None else float(step_size)
    if steps < 1 or step_size <= 0:
        raise ConfigError(
            f"inversion needs steps ≥ 1 and a step size > 0, got {steps}, {step_size}"
        )
    starts = starts.to(images)
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
